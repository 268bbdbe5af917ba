"""The speed paths compute what the plain path computes, and fall back cleanly.

Covers channels_last, sequential offload (on the CPU and with the meta device as
a stand-in GPU), the torch.compile wrapper, the VAE's fp32 fallback after an
overflow, thread and dtype choices, and tiled VAE decoding.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from factories import build_tiny_sd
from sd_desktop.engine import devices, optimize, threads
from sd_desktop.engine import model as model_module
from sd_desktop.engine.errors import InvalidRequestError
from sd_desktop.engine.model import TILE_SIZE, TILE_THRESHOLD, decode_tiled, load_model
from sd_desktop.engine.networks.config import VAEConfig
from sd_desktop.engine.networks.vae import AutoencoderKL
from sd_desktop.engine.offload import SEQUENTIAL_BELOW_BYTES, SequentialOffloader, choose_offload
from sd_desktop.engine.pipeline import generate
from sd_desktop.engine.request import GenerationRequest

GiB = 1024**3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "medium")


def _unet_inputs(width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return (
        torch.randn(2, 4, 8, 12, generator=g),
        torch.tensor([999.0, 3.0]),
        torch.randn(2, 77, width, generator=g),
    )


def _request(**overrides) -> GenerationRequest:
    fields = dict(prompt="a red boat", width=64, height=64, steps=3, seed=11, sampler="euler")
    return GenerationRequest(**(fields | overrides))


# --- channels_last --------------------------------------------------------------------


def test_channels_last_matches_plain_layout(tiny):
    plain = load_model(tiny.single_file, device="cpu", dtype="fp32", channels_last=False)
    fast = load_model(tiny.single_file, device="cpu", dtype="fp32", channels_last=True)
    conv = fast.unet.input_blocks[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain.unet.input_blocks[0][0].weight.is_contiguous()
    x, t, ctx = _unet_inputs(tiny.spec.text_hidden)
    z = torch.randn(1, 4, 8, 12, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        want, got = plain.unet(x, t, ctx), fast.unet(x, t, ctx)
        assert want.abs().mean() > 0.1
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast.vae.decode(z), plain.vae.decode(z), atol=1e-5, rtol=0)


def _nhwc(conv: nn.Conv2d) -> bool:
    return conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_defaults_follow_measurements(tiny):
    fp32 = load_model(tiny.single_file, device="cpu", dtype="fp32")
    bf16 = load_model(tiny.single_file, device="cpu", dtype="bf16")
    assert _nhwc(fp32.vae.decoder.conv_in) and not _nhwc(fp32.unet.input_blocks[0][0])
    assert _nhwc(bf16.vae.decoder.conv_in) and _nhwc(bf16.unet.input_blocks[0][0])
    cuda, mps = torch.device("cuda"), torch.device("mps")
    assert optimize.prefers_channels_last(cuda, torch.float16, "unet")
    assert optimize.prefers_channels_last(cuda, torch.float32, "vae")
    assert not optimize.prefers_channels_last(mps, torch.float16, "unet")


# --- sequential offload ---------------------------------------------------------------


def test_offload_on_cpu_gives_the_same_image(tiny):
    plain = load_model(tiny.single_file, device="cpu", dtype="fp32", offload="none")
    offloaded = load_model(tiny.single_file, device="cpu", dtype="fp32", offload="sequential")
    assert plain.offloader is None and offloaded.offloader is not None
    seen: list[str | None] = []
    request = _request()
    want = generate(plain, request).images[0]
    got = generate(
        offloaded, request, callback=lambda p: seen.append(offloaded.offloader.active)
    ).images[0]
    assert np.array_equal(np.asarray(got), np.asarray(want))
    assert seen == ["unet"] * request.steps  # the UNet's call hook activated it
    assert offloaded.offloader.active == "vae"  # the last thing run was the decode
    offloaded.encode_prompts("x", "")
    assert offloaded.offloader.active == "text"


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.second = nn.Linear(3, 3)
        self.second.weight = self.first.weight  # shared parameter
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x)) * self.scale


def test_offloader_keeps_one_network_on_the_device():
    """The meta device stands in for a GPU: moves are real, computation is shape-only."""
    a, b = _Pair(), _Pair()
    homes = {n: t.data_ptr() for n, t in a.state_dict().items()}
    off = SequentialOffloader(torch.device("meta"), pin=False)
    off.add("a", a)
    off.add("b", b, hook=True)
    assert off.active is None and all(p.device.type == "cpu" for p in a.parameters())

    off.activate("a")
    assert {t.device.type for t in a.state_dict().values()} == {"meta"}
    assert {t.device.type for t in b.state_dict().values()} == {"cpu"}
    assert a.second.weight is a.first.weight  # still shared after the move

    out = b(torch.randn(2, 3, device="meta"))  # the hook brings b over, a goes home
    assert out.device.type == "meta" and off.active == "b"
    assert {n: t.data_ptr() for n, t in a.state_dict().items()} == homes  # nothing copied
    assert {t.device.type for t in b.state_dict().values()} == {"meta"}

    off.release()
    assert off.active is None and {t.device.type for t in b.state_dict().values()} == {"cpu"}
    off.convert("a", torch.float64)
    assert {t.dtype for t in a.state_dict().values()} == {torch.float64}
    off.detach()
    b(torch.randn(2, 3))  # no hook any more: runs where it is
    assert off.active is None
    with pytest.raises(KeyError):
        off.activate("c")
    with pytest.raises(ValueError):
        off.add("a", _Pair())


@pytest.mark.parametrize(
    ("mode", "device", "memory", "expected"),
    [
        ("auto", "cuda", 4 * GiB, "sequential"),
        ("auto", "cuda", SEQUENTIAL_BELOW_BYTES - 1, "sequential"),
        ("auto", "cuda", SEQUENTIAL_BELOW_BYTES, "none"),
        ("auto", "cuda", 24 * GiB, "none"),
        ("none", "cuda", 2 * GiB, "none"),
        ("sequential", "cuda", 24 * GiB, "sequential"),
        ("auto", "cpu", None, "none"),
        ("AUTO", "mps", None, "none"),
    ],
)
def test_offload_choice(mode, device, memory, expected):
    assert choose_offload(mode, torch.device(device), total_memory=memory) == expected


def test_unknown_offload_mode_is_refused():
    with pytest.raises(InvalidRequestError, match="offload"):
        choose_offload("partial", torch.device("cuda"), total_memory=GiB)


# --- torch.compile wrapper ------------------------------------------------------------


def test_compile_wrapper_runs_compiled_and_matches(tiny):
    loaded = load_model(tiny.single_file, device="cpu", dtype="fp32")
    x, t, ctx = _unet_inputs(tiny.spec.text_hidden)
    keys = list(loaded.unet.state_dict())
    with torch.inference_mode():
        want = loaded.unet(x, t, ctx)
        wrapper = optimize.compile_module(loaded.unet, torch.device("cpu"), backend="eager")
        assert wrapper is not None and loaded.unet.forward is wrapper
        got = loaded.unet(x, t, ctx)
        other_size = loaded.unet(x[..., :8, :8], t, ctx)  # a new image size recompiles
    assert wrapper.active and wrapper.failure is None
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert other_size.shape == (2, 4, 8, 8)
    assert list(loaded.unet.state_dict()) == keys  # still the same module for everyone else
    optimize.uncompile(loaded.unet)
    assert "forward" not in loaded.unet.__dict__


def test_compile_failure_falls_back_to_eager(tiny, caplog):
    loaded = load_model(tiny.single_file, device="cpu", dtype="fp32")
    x, t, ctx = _unet_inputs(tiny.spec.text_hidden)

    def broken_backend(graph, example_inputs):
        raise RuntimeError("the C++ compiler crashed")

    with torch.inference_mode():
        want = loaded.unet(x, t, ctx)
        wrapper = optimize.compile_module(loaded.unet, torch.device("cpu"), backend=broken_backend)
        with caplog.at_level(logging.WARNING, logger="sd_desktop.engine.optimize"):
            got = loaded.unet(x, t, ctx)
            again = loaded.unet(x, t, ctx)
    assert wrapper is not None and not wrapper.active
    assert "compiler crashed" in wrapper.failure
    assert len([r for r in caplog.records if "uncompiled" in r.getMessage()]) == 1
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    torch.testing.assert_close(again, want, atol=0, rtol=0)


def test_compile_unavailable_leaves_the_module_alone(monkeypatch):
    module = nn.Linear(2, 2)
    monkeypatch.setattr(optimize.shutil, "which", lambda name: None)
    reason = optimize.compile_unavailable_reason(torch.device("cpu"))
    assert reason is not None and "compiler" in reason
    assert optimize.compile_module(module, torch.device("cpu")) is None
    assert "forward" not in module.__dict__
    monkeypatch.delattr(torch, "compile")
    assert "torch.compile" in optimize.compile_unavailable_reason(torch.device("cpu"))
    assert optimize.compile_module(module, torch.device("cpu"), backend="eager") is None


def test_load_model_wires_compile(tiny, monkeypatch):
    calls = []

    def fake_compile(module, device, **kwargs):
        calls.append((type(module).__name__, device.type))
        return optimize.compile_module(module, device, backend="eager")

    monkeypatch.setattr(model_module, "compile_module", fake_compile)
    loaded = load_model(tiny.single_file, device="cpu", dtype="fp32", compile_unet=True)
    assert calls == [("UNetModel", "cpu")] and loaded.compiled_unet is not None
    # Offloading swaps parameters under a compiled graph, so the two are not combined.
    both = load_model(
        tiny.single_file, device="cpu", dtype="fp32", compile_unet=True, offload="sequential"
    )
    assert len(calls) == 1 and both.compiled_unet is None


# --- reduced-precision VAE overflow ---------------------------------------------------


def _overflow_in_reduced_precision(vae: AutoencoderKL, calls: list[torch.dtype]) -> None:
    """Make the VAE overflow (return inf) whenever it runs in less than fp32."""
    decode = vae.decode

    def overflowing(z: torch.Tensor) -> torch.Tensor:
        calls.append(z.dtype)
        out = decode(z)
        return out if z.dtype == torch.float32 else torch.full_like(out, float("inf"))

    vae.decode = overflowing  # type: ignore[method-assign]


@pytest.mark.parametrize("offload", ["none", "sequential"])
def test_vae_overflow_switches_to_fp32_for_good(tiny, offload):
    # The reference: the same bf16-rounded weights, decoding in fp32 from the start.
    reference = load_model(tiny.single_file, device="cpu", dtype="bf16")
    reference.vae.float()
    reference.vae_dtype = torch.float32
    loaded = load_model(tiny.single_file, device="cpu", dtype="bf16", offload=offload)
    assert loaded.vae_dtype == torch.bfloat16
    calls: list[torch.dtype] = []
    _overflow_in_reduced_precision(loaded.vae, calls)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        got = loaded.decode_latents(latents)
        want = reference.decode_latents(latents)
    assert calls == [torch.bfloat16, torch.float32]
    assert torch.equal(got, want) and want.float().std() > 5
    assert loaded.vae_dtype == torch.float32
    assert {p.dtype for p in loaded.vae.parameters()} == {torch.float32}
    assert loaded.unet.out[2].weight.dtype == torch.bfloat16  # only the VAE changed
    with torch.inference_mode():
        loaded.decode_latents(latents)
        encoded = loaded.encode_image(torch.zeros(1, 3, 64, 64), torch.Generator())
    assert calls[2:] == [torch.float32]  # remembered: no second reduced-precision try
    assert encoded.dtype == torch.bfloat16  # latents stay in the UNet's dtype


# --- threads and dtypes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "reserve", "expected"),
    [(1, True, 1), (2, True, 2), (4, True, 4), (6, True, 5), (16, True, 15), (16, False, 16)],
)
def test_compute_threads(cores, reserve, expected):
    assert threads.compute_threads(cores, reserve) == expected


def test_physical_cores_counts_smt_siblings_once(tmp_path):
    for cpu, siblings in {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3", 4: "4"}.items():
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "thread_siblings_list").write_text(siblings + "\n")
    assert threads.physical_cores([0, 1, 2, 3, 4], sysfs=tmp_path) == 3
    assert threads.physical_cores([0, 2], sysfs=tmp_path) == 1
    assert threads.physical_cores([0, 7], sysfs=tmp_path) == 2  # unreadable: count CPUs


def test_configure_threads_sets_torch():
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(reserve_for_ui=True, cores=8) == 7
        assert torch.get_num_threads() == 7
        assert threads.configure_threads(reserve_for_ui=False, cores=1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


_CPUINFO = "processor\t: 0\nvendor_id\t: X\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbugs\t\t:\n"


@pytest.mark.parametrize(
    ("extra", "native"),
    [("amx_bf16 amx_tile", True), ("avx512_bf16", True), ("avx512_vnni", False), ("", False)],
)
def test_cpuinfo_bf16_detection(extra, native):
    assert devices.cpuinfo_has_native_bf16(_CPUINFO.format(extra=extra)) is native
    assert devices.cpuinfo_has_native_bf16("processor\t: 0\n") is False


def test_auto_dtype_follows_mocked_cpuinfo(monkeypatch):
    cpu = torch.device("cpu")
    for extra, expected in (("avx512_bf16", torch.bfloat16), ("avx2", torch.float32)):
        text = _CPUINFO.format(extra=extra)
        monkeypatch.setattr(
            devices, "cpu_has_native_bf16", lambda t=text: devices.cpuinfo_has_native_bf16(t)
        )
        assert devices.resolve_dtype("auto", cpu) is expected


def test_vae_dtype_choice(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert devices.resolve_vae_dtype(torch.bfloat16, cpu) is torch.bfloat16
    assert devices.resolve_vae_dtype(torch.float32, cpu) is torch.float32
    assert devices.cuda_supports_bf16(cpu) is False
    monkeypatch.setattr(devices, "cuda_supports_bf16", lambda device: True)
    assert devices.resolve_vae_dtype(torch.float16, cuda) is torch.bfloat16  # Ampere+
    assert devices.resolve_vae_dtype(torch.float32, cuda) is torch.float32
    monkeypatch.setattr(devices, "cuda_supports_bf16", lambda device: False)
    assert devices.resolve_vae_dtype(torch.float16, cuda) is torch.float16  # older GPUs


# --- tiled VAE decode -----------------------------------------------------------------


def _largest_step(difference: torch.Tensor) -> float:
    """The largest mean absolute step of `difference` between neighbouring rows or columns.

    Taken on (tiled - whole): tiles that blend leave a difference that varies smoothly,
    a seam leaves a step along the tile border.
    """
    rows = (difference[..., 1:, :] - difference[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    cols = (difference[..., :, 1:] - difference[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    return torch.cat([rows, cols]).max().item()


def test_tiled_decode_blends_without_seams():
    """1088 px (136 latents) crosses the tiling threshold. Tiles cannot match a whole
    decode exactly: GroupNorm statistics and the mid-block attention are per tile.
    Stated tolerances, for this random-weight VAE (outputs of std ~0.3 in [-1, 1]):
    mean difference under 0.03, and the difference never steps by more than 0.04
    between neighbouring rows or columns (measured: 0.014 and 0.022; tiles put side
    by side without overlap step by 0.33, and a 0.1 colour seam is caught below)."""
    torch.manual_seed(0)
    # Narrow, so a 1088 px decode takes seconds; the tiling logic is the same.
    config = VAEConfig(base_channels=8, channel_mult=(1, 1, 2, 2), num_res_blocks=1, norm_groups=4)
    vae = AutoencoderKL(config).eval()
    size = 136
    assert size > TILE_THRESHOLD and size > 2 * TILE_SIZE
    z = torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        whole = vae.decode(z)
        tiled = decode_tiled(vae, z)
    assert tiled.shape == whole.shape == (1, 3, size * 8, size * 8)
    assert whole.std() > 0.1
    assert (tiled - whole).abs().mean() < 0.03
    assert _largest_step(tiled - whole) < 0.04
    seamed = tiled.clone()
    seamed[..., :, size * 4 :] += 0.1
    assert _largest_step(seamed - whole) > 0.04
