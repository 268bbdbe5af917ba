"""Seconds per image: our engine against diffusers on full-size SD 1.5 networks.

    python benchmarks/run.py                 # full run (~8-10 min on 2 cores)
    python benchmarks/run.py --quick         # fewer sizes and repeats (~3.5 min)
    python benchmarks/run.py --repeats 5 --json results.json --compile

No model hub is reachable, so the networks are built with diffusers' SD 1.5
configurations and random weights (UNet 859.5M, VAE 83.7M, CLIP-L text 123M
parameters), rounded to fp16 and written through our key map as one LDM-layout
fp16 single file (~2.1 GB) in a temporary folder. Our engine loads that file;
diffusers runs the same weights. Speed does not depend on what the weights are.

Every figure is measured several times, ours and diffusers alternating, and
reported as minimum and median: the machine may be shared and noisy, and the
minimum is the best estimate of what the code itself costs. Load time and peak
memory are measured in fresh subprocesses so that one load cannot inflate the
other's peak. Not part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # factories: the tiny-model and folder writers

from sd_desktop.engine.checkpoints.keymap import diffusers_to_ldm_checkpoint  # noqa: E402
from sd_desktop.engine.model import load_model  # noqa: E402
from sd_desktop.engine.networks.config import UNetConfig, VAEConfig  # noqa: E402
from sd_desktop.engine.networks.unet import UNetModel  # noqa: E402
from sd_desktop.engine.networks.vae import AutoencoderKL  # noqa: E402
from sd_desktop.engine.threads import configure_threads  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PROMPT = "a lighthouse on a cliff at dusk, oil painting, dramatic light"
WHOLE_IMAGE_STEPS = 20

# The configurations of runwayml/stable-diffusion-v1-5 (facts, written out here).
SD15_UNET: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}
SD15_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
CLIP_L: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
    "projection_dim": 768,
}


# --- measuring ----------------------------------------------------------------------


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def alternate(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, Samples]:
    """Time each function `repeats` times, interleaved (ABBA...), after `warmup` calls each,
    so that a noisy phase of the machine hits both sides alike."""
    out = {name: Samples() for name in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        names = list(fns)
        for round_ in range(repeats):
            for name in names if round_ % 2 == 0 else reversed(names):
                out[name].seconds.append(timed(fns[name]))
                gc.collect()
    return out


def matmul_peak(dtype: torch.dtype, n: int, repeats: int) -> Samples:
    """Seconds for one n x n x n matmul; the machine's practical matrix peak."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    return alternate({"mm": lambda: a @ b}, repeats)["mm"]


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of fn run on the meta device (attention then decomposes into counted bmm's;
    CPU's fused attention kernel would be missed by the counter)."""
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def unet_flops(px: int) -> int:
    def run() -> None:
        unet = UNetModel(UNetConfig())
        unet(
            torch.randn(2, 4, px // 8, px // 8),
            torch.tensor([500.0, 500.0]),
            torch.randn(2, 77, 768),
        )

    return count_flops(run)


def vae_decode_flops(px: int) -> int:
    return count_flops(
        lambda: AutoencoderKL(VAEConfig()).decode(torch.randn(1, 4, px // 8, px // 8))
    )


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """This process's peak RSS. VmHWM belongs to the current address space; getrusage's
    ru_maxrss would carry over the parent's peak through fork and exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tensor_bytes(*modules: torch.nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for t in (*module.parameters(), *module.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


def machine_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags_of_interest() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx2")
    return " ".join(f for f in wanted if f in flags) or "none"


# --- building the networks ----------------------------------------------------------


def build_diffusers_modules(seed: int = 0) -> tuple[Any, Any, Any]:
    """SD 1.5-shaped UNet, VAE and CLIP-L with default random init, weights rounded to fp16
    (so the fp16 file and these modules hold the same numbers), fp32, eval mode."""
    from diffusers import AutoencoderKL as DiffusersVAE
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**SD15_UNET)
    vae = DiffusersVAE(**SD15_VAE)
    text = CLIPTextModel(CLIPTextConfig(**CLIP_L))
    with torch.no_grad():
        for module in (unet, vae, text):
            module.eval().requires_grad_(False)
            for p in module.parameters():
                p.copy_(p.half().float())
    return unet, vae, text


def write_single_file(unet: Any, vae: Any, text: Any, path: Path) -> None:
    from safetensors.torch import save_file

    state = diffusers_to_ldm_checkpoint(unet.state_dict(), vae.state_dict(), text.state_dict())
    half = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    del state
    save_file(half, str(path), metadata={"format": "pt"})


def write_config_folder(unet: Any, vae: Any, text: Any, folder: Path) -> None:
    """The configs (no weights) diffusers' from_single_file needs to build the pipeline
    offline: what `config=` points at instead of a hub repository."""
    from factories import write_pipeline_files

    write_pipeline_files(folder)
    unet.save_config(folder / "unet")
    vae.save_config(folder / "vae")
    text.config.save_pretrained(folder / "text_encoder")


# --- load time and peak memory (child processes) --------------------------------------


def child_load(kind: str, path: Path, config: Path, dtype_name: str) -> dict[str, Any]:
    """Runs in a fresh process: load, then report time and memory as JSON."""
    dtype = DTYPES[dtype_name]
    if kind == "diffusers":
        from diffusers import StableDiffusionPipeline
    baseline = rss_bytes()
    started = time.perf_counter()
    if kind == "ours":
        model = load_model(path, device="cpu", dtype=dtype)
        nets = (model.unet, model.vae, model.text.text_model)
    else:
        pipe = StableDiffusionPipeline.from_single_file(
            str(path),
            config=str(config),
            torch_dtype=dtype,
            local_files_only=True,
            safety_checker=None,
            requires_safety_checker=False,
        )
        nets = (pipe.unet, pipe.vae, pipe.text_encoder)
    seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "dtype": dtype_name,
        "seconds": seconds,
        "baseline_rss": baseline,
        "peak_rss": peak_rss_bytes(),
        "final_rss": rss_bytes(),
        "model_bytes": tensor_bytes(*nets),
    }


def measure_load(kind: str, path: Path, config: Path, dtype_name: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-load", kind, str(path), str(config), dtype_name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"kind": kind, "dtype": dtype_name, "error": " | ".join(tail)}
    return json.loads(lines[-1])


# --- speed -----------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    dtype: str
    ours: Samples
    theirs: Samples | None
    flops: int = 0
    note: str = ""


def profile_summary(fn: Callable[[], Any]) -> list[tuple[str, float]]:
    """Self CPU time of one call, grouped by kind of work."""
    from torch.profiler import ProfilerActivity, profile

    groups = {
        "convolution": ("conv",),
        "attention": ("attention",),
        "linear / matmul": ("addmm", "aten::mm", "bmm", "matmul", "linear"),
        "normalization": ("norm",),
        "copies / layout": ("copy", "contiguous", "cat", "clone", "to_copy"),
    }
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key.lower()
        group = next((g for g, keys in groups.items() if any(k in name for k in keys)), "other")
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


def speed_phase(
    dtype_name: str,
    path: Path,
    modules: tuple[Any, Any, Any],
    args: argparse.Namespace,
    flops: dict[str, int],
    log: Callable[[str], None],
    memo: dict[str, Any],
) -> tuple[list[Row], dict[str, Any]]:
    dtype = DTYPES[dtype_name]
    d_unet, d_vae, d_text = (m.to(dtype) for m in modules)
    ours = load_model(path, device="cpu", dtype=dtype)
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    extra["quality"] = quality_against_fp32(ours, dtype_name, args, memo, log)
    g = torch.Generator().manual_seed(0)
    ctx = torch.randn(2, 77, 768, generator=g).to(dtype)
    t = torch.tensor([500.0, 500.0])

    unet_sizes = args.unet_sizes if dtype_name == "bf16" or not args.quick else [256]
    for px in unet_sizes:
        x = torch.randn(2, 4, px // 8, px // 8, generator=g).to(dtype)
        with torch.inference_mode():
            a = ours.unet(x, t, ctx).float()
            b = d_unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0].float()
        diff = ((a - b).norm() / b.norm()).item()
        log(f"  UNet {px}px {dtype_name}: relative difference ours vs diffusers {diff:.1e}")
        samples = alternate(
            {
                "ours": lambda x=x: ours.unet(x, t, ctx),
                "diffusers": lambda x=x: d_unet(x, t, encoder_hidden_states=ctx, return_dict=False),
            },
            args.repeats,
        )
        rows.append(
            Row(
                f"UNet step {px}px, CFG batch 2",
                dtype_name,
                samples["ours"],
                samples["diffusers"],
                flops[f"unet{px}"],
                f"rel. diff {diff:.0e}",
            )
        )
        log(
            f"  UNet {px}px {dtype_name}: ours {samples['ours'].min:.2f}s "
            f"diffusers {samples['diffusers'].min:.2f}s"
        )

    vae_px = args.vae_size
    z = torch.randn(1, 4, vae_px // 8, vae_px // 8, generator=g).to(dtype)
    vae_repeats = max(1, min(args.repeats, 2 if dtype_name == "fp32" else args.repeats))
    samples = alternate(
        {
            "ours": lambda: ours.vae.decode(z),
            "diffusers": lambda: d_vae.decode(z, return_dict=False),
        },
        vae_repeats,
        warmup=0 if vae_px >= 512 else 1,
    )
    rows.append(
        Row(
            f"VAE decode {vae_px}px",
            dtype_name,
            samples["ours"],
            samples["diffusers"],
            flops[f"vae{vae_px}"],
        )
    )
    log(
        f"  VAE {vae_px}px {dtype_name}: ours {samples['ours'].min:.2f}s "
        f"diffusers {samples['diffusers'].min:.2f}s"
    )

    ids = torch.tensor([ours.text.chunk(p)[0].token_ids for p in (PROMPT, "")], dtype=torch.long)
    samples = alternate(
        {
            "ours": lambda: ours.encode_prompts(PROMPT, ""),
            "diffusers": lambda: d_text(input_ids=ids)[0],
        },
        max(3, args.repeats),
    )
    rows.append(
        Row("text encoding (prompt + negative)", dtype_name, samples["ours"], samples["diffusers"])
    )

    x0 = torch.randn(1, 4, 64, 64, generator=g).to(dtype)
    preview = alternate({"preview": lambda: ours.preview_fast(x0)}, 20)["preview"]
    extra["preview_fast_512"] = preview.median
    rows.append(Row("fast preview 512px (latent -> RGB)", dtype_name, preview, None))

    if dtype_name == "bf16" and not args.no_profile:
        px = max(unet_sizes)
        x = torch.randn(2, 4, px // 8, px // 8, generator=g).to(dtype)
        extra["profile_px"] = px
        extra["profile"] = profile_summary(lambda: ours.unet(x, t, ctx))

    if args.compile and dtype_name == "bf16":
        extra["compile"] = measure_compile(path, dtype, ctx, t, args, log)

    return rows, extra  # `ours` goes with this frame; the caller collects


def quality_against_fp32(
    ours: Any, dtype_name: str, args: argparse.Namespace, memo: dict[str, Any], log: Callable
) -> dict[str, float]:
    """bf16 against fp32 on the full-size networks: one UNet call and a whole image.

    The fp32 phase runs first and leaves its outputs in `memo`; the bf16 phase compares.
    """
    import numpy as np

    from sd_desktop.engine.pipeline import generate
    from sd_desktop.engine.request import GenerationRequest

    g = torch.Generator().manual_seed(123)
    x = torch.randn(2, 4, 32, 32, generator=g)
    ctx = torch.randn(2, 77, 768, generator=g)
    t = torch.tensor([801.0, 801.0])
    with torch.inference_mode():
        eps = ours.unet(x.to(ours.dtype), t, ctx.to(ours.dtype)).float()
    request = GenerationRequest(
        prompt=PROMPT,
        width=256,
        height=256,
        steps=args.quality_steps,
        seed=1,
        sampler="dpmpp_2m_karras",
    )
    started = time.perf_counter()
    image = np.asarray(generate(ours, request).images[0], dtype=np.float32)
    log(
        f"  whole 256px image, {args.quality_steps} steps, {dtype_name}: "
        f"{time.perf_counter() - started:.1f} s"
    )
    if dtype_name == "fp32":
        memo["eps"], memo["image"] = eps, image
        return {}
    if "image" not in memo:
        return {}
    ref_eps, ref_image = memo["eps"], memo["image"]
    diff = np.abs(image - ref_image)
    result = {
        "unet_relative": ((eps - ref_eps).norm() / ref_eps.norm()).item(),
        "image_mean_abs": float(diff.mean()),
        "image_max_abs": float(diff.max()),
        "image_share_over_10": float((diff > 10).mean()),
        "image_std": float(ref_image.std()),
        "steps": args.quality_steps,
    }
    log(f"  {dtype_name} vs fp32: {result}")
    return result


def measure_compile(
    path: Path,
    dtype: torch.dtype,
    ctx: torch.Tensor,
    t: torch.Tensor,
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The optional compiled UNet: time of the first (compiling) call and of later steps."""
    compiled = load_model(path, device="cpu", dtype=dtype, compile_unet=True)
    plain = load_model(path, device="cpu", dtype=dtype)
    out: dict[str, Any] = {}
    for px in args.compile_sizes:
        x = torch.randn(2, 4, px // 8, px // 8).to(dtype)
        with torch.inference_mode():
            first = timed(lambda x=x: compiled.unet(x, t, ctx))
        samples = alternate(
            {
                "compiled": lambda x=x: compiled.unet(x, t, ctx),
                "eager": lambda x=x: plain.unet(x, t, ctx),
            },
            args.repeats,
            warmup=0,
        )
        failure = compiled.compiled_unet.failure if compiled.compiled_unet else "not compiled"
        out[str(px)] = {
            "first_call": first,
            "compiled_min": samples["compiled"].min,
            "eager_min": samples["eager"].min,
            "failure": failure,
        }
        log(
            f"  compile {px}px: first call {first:.0f}s, compiled {samples['compiled'].min:.2f}s, "
            f"eager {samples['eager'].min:.2f}s"
        )
    return out


# --- report ---------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds:.2f} s"


def render(report: dict[str, Any], rows: list[Row]) -> str:
    peaks = report["peaks"]
    lines = [
        f"- Date: {report['date']}",
        f"- Machine: {report['machine']} ({report['cores']} physical cores, torch threads "
        f"{report['threads']}); CPU flags: {report['flags']}",
        f"- torch {report['torch']}, diffusers {report['diffusers']}; load average at start "
        f"{report['load_start']}, at end {report['load_end']}",
        f"- Matmul peak ({report['peak_n']}^3, best of {report['repeats_peak']}): "
        f"fp32 {peaks['fp32'] / 1e9:.0f} GFLOPS, bf16 {peaks['bf16'] / 1e9:.0f} GFLOPS",
        "",
        "| measurement | dtype | ours min | ours median | diffusers min | diffusers median "
        "| speedup (min) | ours % of peak | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        theirs_min = fmt_s(r.theirs.min) if r.theirs else "-"
        theirs_med = fmt_s(r.theirs.median) if r.theirs else "-"
        speedup = f"{r.theirs.min / r.ours.min:.2f}x" if r.theirs else "-"
        peak = f"{100 * r.flops / r.ours.min / peaks[r.dtype]:.0f}%" if r.flops else "-"
        lines.append(
            f"| {r.what} | {r.dtype} | {fmt_s(r.ours.min)} | {fmt_s(r.ours.median)} | {theirs_min} "
            f"| {theirs_med} | {speedup} | {peak} | {r.note} |"
        )
    lines += ["", *(f"- {line}" for line in derived_lines(report, rows))]
    if report.get("loads"):
        lines += [
            "",
            "| load fp16 file | run dtype | seconds | peak RSS over baseline | model in "
            "memory | peak / model |",
            "|---|---|---|---|---|---|",
        ]
        for item in report["loads"]:
            if "error" in item:
                lines.append(
                    f"| {item['kind']} | {item['dtype']} | failed: {item['error']} | | | |"
                )
                continue
            over = item["peak_rss"] - item["baseline_rss"]
            lines.append(
                f"| {item['kind']} | {item['dtype']} | {item['seconds']:.1f} s "
                f"| {over / 2**30:.2f} GiB "
                f"| {item['model_bytes'] / 2**30:.2f} GiB | {over / item['model_bytes']:.2f}x |"
            )
        lines += [
            "",
            f"File: {report['file_bytes'] / 2**30:.2f} GiB; a fresh process per load; "
            "the file in the page cache.",
        ]
    for dtype_name, extra in report.get("extras", {}).items():
        q = extra.get("quality")
        if q:
            lines += [
                "",
                f"- {dtype_name} against fp32, full-size random weights: one UNet call (256px) "
                f"relative difference {q['unet_relative']:.1e}; a whole 256px image "
                f"({q['steps']} DPM++ 2M Karras steps): mean |difference| "
                f"{q['image_mean_abs']:.2f}/255, max {q['image_max_abs']:.0f}/255, "
                f"{100 * q['image_share_over_10']:.1f}% of values off by more than 10 "
                f"(image std {q['image_std']:.0f})",
            ]
        if "profile" in extra:
            total = sum(s for _, s in extra["profile"])
            parts = ", ".join(
                f"{g} {s:.2f} s ({100 * s / total:.0f}%)" for g, s in extra["profile"]
            )
            lines += [
                "",
                f"- Where an ours {dtype_name} UNet step at {extra['profile_px']}px goes "
                f"(profiler, self time): {parts}",
            ]
        if "compile" in extra:
            for px, c in extra["compile"].items():
                lines.append(
                    f"- torch.compile ({dtype_name}, {px}px): first call {c['first_call']:.0f} s, "
                    f"then {fmt_s(c['compiled_min'])} vs eager {fmt_s(c['eager_min'])} "
                    f"({c['eager_min'] / c['compiled_min']:.2f}x)"
                    + (f"; failed: {c['failure']}" if c["failure"] else "")
                )
    return "\n".join(lines)


def derived_lines(report: dict[str, Any], rows: list[Row]) -> list[str]:
    """Whole-image estimates and the cross-dtype ratios the targets are stated in."""
    by = {(r.what, r.dtype): r for r in rows}
    out = []
    for dtype_name in DTYPES:
        unet = next(
            (r for (w, d), r in by.items() if d == dtype_name and "512px" in w and "UNet" in w),
            None,
        )
        vae = next((r for (w, d), r in by.items() if d == dtype_name and "VAE" in w), None)
        text = by.get(("text encoding (prompt + negative)", dtype_name))
        if unet and vae and text and "512px" in vae.what:
            ours = text.ours.min + WHOLE_IMAGE_STEPS * unet.ours.min + vae.ours.min
            theirs = text.theirs.min + WHOLE_IMAGE_STEPS * unet.theirs.min + vae.theirs.min
            out.append(
                f"Whole 512px image, {WHOLE_IMAGE_STEPS} steps, {dtype_name} (extrapolated: text + "
                f"{WHOLE_IMAGE_STEPS} x step + decode, from the minima): ours {ours:.1f} s, "
                f"diffusers {theirs:.1f} s ({theirs / ours:.2f}x)"
            )
        preview = by.get(("fast preview 512px (latent -> RGB)", dtype_name))
        if unet and preview:
            out.append(
                f"Fast preview cost per step ({dtype_name}, 512px): "
                f"{preview.ours.median * 1e3:.2f} ms "
                f"= {100 * preview.ours.median / unet.ours.min:.3f}% of a step"
            )
    for px in (256, 512):
        ours_bf16 = by.get((f"UNet step {px}px, CFG batch 2", "bf16"))
        theirs_fp32 = by.get((f"UNet step {px}px, CFG batch 2", "fp32"))
        if ours_bf16 and theirs_fp32:
            out.append(
                f"UNet {px}px: ours bf16 vs diffusers fp32 "
                f"{theirs_fp32.theirs.min / ours_bf16.ours.min:.2f}x, "
                f"vs diffusers bf16 {ours_bf16.theirs.min / ours_bf16.ours.min:.2f}x, "
                f"ours fp32 vs diffusers fp32 {theirs_fp32.theirs.min / theirs_fp32.ours.min:.2f}x"
            )
    return out


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (~3.5 min)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--workdir", type=Path, default=None, help="where the 2 GB file goes")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow)")
    parser.add_argument("--no-load", action="store_true", help="skip the load/memory phase")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile summary")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--child-load", nargs=4, metavar=("KIND", "FILE", "CONFIG", "DTYPE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.child_load:
        kind, file, config, dtype_name = args.child_load
        configure_threads(reserve_for_ui=False)
        print(json.dumps(child_load(kind, Path(file), Path(config), dtype_name)), flush=True)
        return 0

    args.repeats = args.repeats or (1 if args.quick else 3)
    args.unet_sizes = [256, 512]
    args.vae_size = 256 if args.quick else 512
    args.compile_sizes = [256] if args.quick else [256, 512]
    args.quality_steps = 4 if args.quick else 8
    threads = args.threads or configure_threads(reserve_for_ui=False)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {message}", flush=True)

    import diffusers

    from sd_desktop.engine.threads import physical_cores

    report: dict[str, Any] = {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine_name(),
        "cores": physical_cores(),
        "threads": threads,
        "flags": cpu_flags_of_interest(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "load_start": load_average(),
        "repeats": args.repeats,
        "peak_n": 4096,
        "repeats_peak": 5,
    }
    log(f"{report['machine']}, {threads} threads, load average {report['load_start']}")
    peaks = {
        name: matmul_peak(dt, report["peak_n"], report["repeats_peak"])
        for name, dt in DTYPES.items()
    }
    report["peaks"] = {name: 2 * report["peak_n"] ** 3 / s.min for name, s in peaks.items()}
    log(
        f"matmul peak: {', '.join(f'{k} {v / 1e9:.0f} GFLOPS' for k, v in report['peaks'].items())}"
    )

    flops = {f"unet{px}": unet_flops(px) for px in args.unet_sizes}
    flops[f"vae{args.vae_size}"] = vae_decode_flops(args.vae_size)
    log("FLOPs: " + ", ".join(f"{k} {v / 1e12:.2f} T" for k, v in flops.items()))

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sd-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "sd15-random-fp16.safetensors"
    config = workdir / "diffusers-config"
    try:
        log("building SD 1.5-shaped networks with random weights")
        modules = build_diffusers_modules()
        if not path.exists():
            write_single_file(*modules, path)
        write_config_folder(*modules, config)
        report["file_bytes"] = path.stat().st_size
        log(f"wrote {path} ({report['file_bytes'] / 2**30:.2f} GiB)")

        if not args.no_load:
            loads = []
            load_dtypes = ["bf16"] if args.quick else ["bf16", "fp32"]
            for dtype_name in load_dtypes:
                for kind in ("ours", "diffusers"):
                    item = measure_load(kind, path, config, dtype_name)
                    loads.append(item)
                    log(f"load {kind} {dtype_name}: {item}")
            report["loads"] = loads

        rows: list[Row] = []
        report["extras"] = {}
        memo: dict[str, Any] = {}
        for dtype_name in ("fp32", "bf16"):  # fp32 first: diffusers' modules are cast once
            log(f"speed, {dtype_name}")
            phase_rows, extra = speed_phase(dtype_name, path, modules, args, flops, log, memo)
            rows += phase_rows
            report["extras"][dtype_name] = extra
            gc.collect()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    report["load_end"] = load_average()
    report["rows"] = [
        {
            "what": r.what,
            "dtype": r.dtype,
            "ours": r.ours.seconds,
            "diffusers": r.theirs.seconds if r.theirs else None,
            "flops": r.flops,
            "note": r.note,
        }
        for r in rows
    ]
    table = render(report, rows)
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
