"""Real checkpoint layouts open to the same weights: LDM single files (fp32/fp16),
diffusers folders (plain, fp16 variant, sharded, .bin), weights-only .ckpt files.

The reference for every comparison is the in-memory tiny model run through
keymap, so a wrong rename or reshape in the lazy path shows up as a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from factories import TinyModel, build_tiny_sd
from sd_desktop.engine.checkpoints.checkpoint import Checkpoint, describe, open_checkpoint
from sd_desktop.engine.checkpoints.keymap import split_ldm_checkpoint
from sd_desktop.engine.checkpoints.lazy_weights import (
    LazyStateDict,
    load_weights,
    materialize,
    pickle_refs,
    safetensors_refs,
)
from sd_desktop.engine.errors import CheckpointError
from sd_desktop.engine.networks.config import TextEncoderConfig, UNetConfig, VAEConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("unet", "vae", "text")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_sd(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(tiny: TinyModel) -> dict[str, dict[str, torch.Tensor]]:
    """Component state dicts straight from the in-memory modules, as keymap splits them."""
    unet, vae, text = split_ldm_checkpoint(tiny.ldm_state_dict())
    return {"unet": unet, "vae": vae, "text": text}


def assert_same_weights(
    ckpt: Checkpoint,
    reference: dict[str, dict[str, torch.Tensor]],
    dtype: torch.dtype = torch.float32,
) -> None:
    for component in COMPONENTS:
        got = ckpt.component_state_dict(component)
        want = reference[component]
        assert set(got) == set(want), (component, set(got) ^ set(want))
        for key, expected in want.items():
            tensor = got[key]
            assert tensor.dtype == dtype, key
            # VAE attention projections are 1x1 convs in LDM whatever the source stored
            assert torch.equal(tensor, expected.to(dtype).reshape(tensor.shape)), key
            assert tensor.shape == expected.shape or expected.ndim == 2, key


def test_single_file_and_folder_give_the_reference_weights(tiny: TinyModel, reference) -> None:
    single = open_checkpoint(tiny.single_file)
    folder = open_checkpoint(tiny.folder)
    assert single.format == "safetensors" and folder.format == "diffusers"
    assert single.config == folder.config
    assert single.config.family_name == "SD 1.x"
    assert dict(single.shapes) == dict(folder.shapes)
    assert single.dtype == folder.dtype == torch.float32
    assert_same_weights(single, reference)
    assert_same_weights(folder, reference)


def test_fp16_single_file(tiny: TinyModel, reference) -> None:
    ckpt = open_checkpoint(tiny.single_file_as(torch.float16))
    assert ckpt.dtype == torch.float16
    assert_same_weights(ckpt, reference, torch.float16)


def test_header_shapes_match_the_stored_tensors(tiny: TinyModel) -> None:
    ckpt = open_checkpoint(tiny.single_file)
    stored = load_file(str(tiny.single_file))
    assert set(ckpt.shapes) == set(stored)
    for key, tensor in stored.items():
        assert ckpt.shapes[key] == tuple(tensor.shape), key
    # the folder's shapes come from its three headers, renamed without reading weights
    folder = open_checkpoint(tiny.folder)
    for key, tensor in tiny.ldm_state_dict().items():
        assert folder.shapes[key] == tuple(tensor.shape), key


def test_hashes_name_and_size(tiny: TinyModel) -> None:
    ckpt = open_checkpoint(tiny.single_file)
    digest = hashlib.sha256(tiny.single_file.read_bytes()).hexdigest()
    assert ckpt.sha256() == digest
    assert ckpt.short_hash() == digest[:10]
    assert ckpt.name == tiny.single_file.stem
    assert ckpt.size_bytes == tiny.single_file.stat().st_size

    folder = open_checkpoint(tiny.folder)
    unet_file = tiny.folder / "unet" / "diffusion_pytorch_model.safetensors"
    assert folder.short_hash() == hashlib.sha256(unet_file.read_bytes()).hexdigest()[:10]
    assert folder.name == tiny.folder.name
    weights = [
        unet_file,
        tiny.folder / "vae" / "diffusion_pytorch_model.safetensors",
        tiny.folder / "text_encoder" / "model.safetensors",
    ]
    assert folder.size_bytes == sum(p.stat().st_size for p in weights)


def test_weights_only_ckpt_loads(tiny: TinyModel, reference, tmp_path: Path) -> None:
    path = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": tiny.ldm_state_dict(), "global_step": 470000, "epoch": 6}, path)
    ckpt = open_checkpoint(path)
    assert ckpt.format == "pickle" and ckpt.name == "legacy"
    assert_same_weights(ckpt, reference)
    bare = tmp_path / "bare.pt"
    torch.save(tiny.ldm_state_dict(), bare)
    assert_same_weights(open_checkpoint(bare), reference)


def test_extra_keys_are_ignored(tiny: TinyModel, reference, tmp_path: Path) -> None:
    state = load_file(str(tiny.single_file))
    extra = {
        "model_ema.decay": torch.tensor(0.9999),
        "model_ema.num_updates": torch.tensor(1000, dtype=torch.int32),
        "betas": torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64),
        "alphas_cumprod": torch.rand(1000, dtype=torch.float64),
        "first_stage_model.loss.logvar": torch.zeros(()),
    }
    # EMA copies are named with the dots removed, e.g. model_ema.diffusion_modelout2weight
    unet_keys = [k for k in state if k.startswith("model.diffusion_model.")]
    for key in unet_keys[:5]:
        extra["model_ema." + key.removeprefix("model.").replace(".", "")] = state[key] + 1
    path = tmp_path / "with_ema.safetensors"
    save_file({**state, **extra}, str(path))
    ckpt = open_checkpoint(path)
    assert "model_ema.decay" in ckpt.shapes  # shapes report everything in the file
    assert ckpt.dtype == torch.float32  # float64 schedules do not outvote the weights
    assert_same_weights(ckpt, reference)


def test_text_keys_without_text_model_level(tiny: TinyModel, reference, tmp_path: Path) -> None:
    prefix = "cond_stage_model.transformer."
    state = {
        (prefix + k[len(prefix + "text_model.") :] if k.startswith(prefix) else k): v
        for k, v in load_file(str(tiny.single_file)).items()
    }
    assert not any(k.startswith(prefix + "text_model.") for k in state)
    path = tmp_path / "old_text_keys.safetensors"
    save_file(state, str(path))
    ckpt = open_checkpoint(path)
    assert dict(ckpt.shapes) == dict(open_checkpoint(tiny.single_file).shapes)
    assert_same_weights(ckpt, reference)


def test_linear_vae_attention_is_handed_out_as_conv(tiny: TinyModel, reference, tmp_path) -> None:
    state = load_file(str(tiny.single_file))
    key = "first_stage_model.decoder.mid.attn_1.q.weight"
    assert state[key].ndim == 4
    state[key] = state[key].flatten(1)
    path = tmp_path / "linear_attn.safetensors"
    save_file(state, str(path))
    ckpt = open_checkpoint(path)
    assert len(ckpt.shapes[key]) == 4
    assert_same_weights(ckpt, reference)


def _copy_folder(tiny: TinyModel, dest: Path) -> Path:
    shutil.copytree(tiny.folder, dest)
    return dest


def test_folder_fp16_variant(tiny: TinyModel, reference, tmp_path: Path) -> None:
    folder = _copy_folder(tiny, tmp_path / "fp16_only")
    stems = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model"}
    for sub, stem in (*stems.items(), ("text_encoder", "model")):
        src = folder / sub / f"{stem}.safetensors"
        half = {k: v.half() for k, v in load_file(str(src)).items()}
        save_file(half, str(folder / sub / f"{stem}.fp16.safetensors"))
        src.unlink()
    ckpt = open_checkpoint(folder)
    assert ckpt.dtype == torch.float16
    assert_same_weights(ckpt, reference, torch.float16)


def test_folder_with_sharded_unet(tiny: TinyModel, reference, tmp_path: Path) -> None:
    folder = _copy_folder(tiny, tmp_path / "sharded")
    src = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(src))
    keys = sorted(state)
    shards = {
        "diffusion_pytorch_model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "diffusion_pytorch_model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    weight_map = {}
    for name, shard_keys in shards.items():
        save_file({k: state[k] for k in shard_keys}, str(folder / "unet" / name))
        weight_map.update(dict.fromkeys(shard_keys, name))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps(index)
    )
    src.unlink()
    ckpt = open_checkpoint(folder)
    assert_same_weights(ckpt, reference)
    # the hash covers the shards in order, so it is stable for the same download
    joined = b"".join((folder / "unet" / name).read_bytes() for name in sorted(shards))
    assert ckpt.sha256() == hashlib.sha256(joined).hexdigest()

    # a shard gone missing is named
    (folder / "unet" / next(iter(shards))).unlink()
    with pytest.raises(CheckpointError, match="00001-of-00002.safetensors is missing"):
        open_checkpoint(folder)


def test_folder_with_bin_text_encoder(tiny: TinyModel, reference, tmp_path: Path) -> None:
    folder = _copy_folder(tiny, tmp_path / "bin_text")
    src = folder / "text_encoder" / "model.safetensors"
    # older exports keep the text_model. level; the loader accepts both
    state = {"text_model." + k: v for k, v in load_file(str(src)).items()}
    torch.save(state, folder / "text_encoder" / "pytorch_model.bin")
    src.unlink()
    assert_same_weights(open_checkpoint(folder), reference)


def test_describe_reads_headers_only(tiny: TinyModel, tmp_path_factory) -> None:
    info = describe(tiny.single_file_as(torch.float16))
    assert (info.family, info.format, info.dtype, info.supported) == (
        "SD 1.x",
        "safetensors",
        torch.float16,
        True,
    )
    assert info.size_bytes == tiny.single_file_as(torch.float16).stat().st_size
    assert info.summary.startswith("SD 1.x · safetensors float16 · ")
    assert describe(tiny.folder).format == "diffusers"
    assert open_checkpoint(tiny.folder).describe() == describe(tiny.folder)

    inpaint = build_tiny_sd(tmp_path_factory, variant="inpaint")
    assert describe(inpaint.single_file).family == "SD 1.x inpainting"
    assert open_checkpoint(inpaint.folder).config.is_inpainting


def test_component_name_is_checked(tiny: TinyModel) -> None:
    with pytest.raises(ValueError, match="unknown component"):
        open_checkpoint(tiny.single_file).component_state_dict("clip")  # type: ignore[arg-type]


# --- materializing -------------------------------------------------------------------------


def test_materialize_converts_once_and_owns_its_memory(tiny: TinyModel, tmp_path: Path) -> None:
    fp16 = tiny.single_file_as(torch.float16)
    lazy = LazyStateDict(safetensors_refs(fp16))
    out = materialize(lazy, torch.float32)
    with safe_open(str(fp16), "pt") as f:
        for key in f.keys():
            assert out[key].dtype == torch.float32
            assert torch.equal(out[key], f.get_tensor(key).float())

    # pickles are memory-mapped: even without a dtype change the result must be a copy
    path = tmp_path / "ints.ckpt"
    torch.save({"w": torch.randn(8, 8), "ids": torch.arange(77)}, path)
    lazy = LazyStateDict(pickle_refs(path))
    assert lazy.file_backed
    mapped = lazy["w"]
    out = materialize(lazy, torch.float32)
    assert out["ids"].dtype == torch.int64 and torch.equal(out["ids"], torch.arange(77))
    assert torch.equal(out["w"], mapped)
    assert out["w"].untyped_storage().data_ptr() != mapped.untyped_storage().data_ptr()


def test_load_weights_into_meta_modules(tiny: TinyModel) -> None:
    from sd_desktop.engine.networks.unet import UNetModel
    from sd_desktop.engine.networks.vae import AutoencoderKL

    ckpt = open_checkpoint(tiny.single_file_as(torch.float16))
    with torch.device("meta"):
        unet = UNetModel(ckpt.config.unet)
        vae = AutoencoderKL(ckpt.config.vae)
    load_weights(unet, ckpt.component_state_dict("unet"), torch.float32, what="UNet")
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in unet.parameters())
    assert not any(b.is_meta for b in unet.buffers())
    key = "input_blocks.0.0.weight"
    assert torch.equal(unet.state_dict()[key], ckpt.component_state_dict("unet")[key].float())

    with pytest.raises(CheckpointError, match="The VAE weights do not fit the model: .* missing"):
        load_weights(vae, ckpt.component_state_dict("unet"), torch.float32, what="VAE")


def test_load_weights_reports_shape_mismatch(tiny: TinyModel) -> None:
    ckpt = open_checkpoint(tiny.single_file)
    state = dict(ckpt.component_state_dict("vae"))
    state["decoder.conv_out.weight"] = torch.zeros(5, 5, 3, 3)
    from sd_desktop.engine.networks.vae import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(ckpt.config.vae)
    with pytest.raises(CheckpointError) as info:
        load_weights(vae, state, torch.float32, what="VAE")
    assert "size mismatch" in str(info.value) and "\n" not in str(info.value)


# --- peak memory -----------------------------------------------------------------------------

_MEASURE = textwrap.dedent(
    """
    import json, sys, torch
    from pathlib import Path
    from sd_desktop.engine.checkpoints.checkpoint import open_checkpoint
    from sd_desktop.engine.checkpoints.lazy_weights import materialize

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    path, dtype = sys.argv[1], getattr(torch, sys.argv[2])
    ckpt = open_checkpoint(path)
    lazy = {c: ckpt.component_state_dict(c) for c in ("unet", "vae", "text")}
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    model = {c: materialize(sd, dtype) for c, sd in lazy.items()}
    peak = status("VmHWM")
    final = sum(t.numel() * t.element_size() for sd in model.values() for t in sd.values())
    print(json.dumps({"base": base, "peak": peak, "final": final}))
    """
)


def sd_shaped_file(
    path: Path, unet: UNetConfig, vae: VAEConfig, text: TextEncoderConfig, dtype: str
) -> Path:
    """An LDM single file with SD 1.x structure and zero weights, written as a sparse file."""
    from sd_desktop.engine.checkpoints.detect import expected_text_shapes
    from sd_desktop.engine.networks.unet import UNetModel
    from sd_desktop.engine.networks.vae import AutoencoderKL

    with torch.device("meta"):
        unet_module = UNetModel(unet)
        vae_module = AutoencoderKL(vae)
    shapes = {f"model.diffusion_model.{k}": v.shape for k, v in unet_module.state_dict().items()}
    shapes |= {f"first_stage_model.{k}": v.shape for k, v in vae_module.state_dict().items()}
    shapes |= expected_text_shapes(text, "cond_stage_model.transformer.text_model.")
    itemsize = {"F16": 2, "F32": 4}[dtype]
    header, offset = {}, 0
    for key, shape in shapes.items():
        nbytes = itemsize * int(torch.Size(shape).numel())
        header[key] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def measure_peak(path: Path, dtype: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), dtype],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("run_dtype", ["float32", "float16"])
def test_peak_memory_while_loading_stays_near_the_final_model(
    tmp_path: Path, run_dtype: str
) -> None:
    """A ~200 MB fp16 file loaded to fp32 (or kept fp16) peaks within 1.2x the final model."""
    # SD 1.x structure at a third of the width: ~100M weights
    unet = UNetConfig(model_channels=64, context_dim=256)
    vae = VAEConfig(base_channels=96)
    text = TextEncoderConfig(hidden_size=256, num_heads=4, num_layers=4, intermediate_size=1024)
    path = sd_shaped_file(tmp_path / "sd_shaped.safetensors", unet, vae, text, "F16")
    assert open_checkpoint(path).config.unet == unet
    assert 150e6 < path.stat().st_size < 300e6
    numbers = measure_peak(path, run_dtype)
    growth = numbers["peak"] - numbers["base"]
    ratio = growth / numbers["final"]
    print(f"{run_dtype}: final {numbers['final'] / 1e6:.0f} MB, peak growth {growth / 1e6:.0f} MB")
    assert ratio <= 1.2, numbers
    assert ratio >= 0.9, numbers  # the measurement sees the model at all
