"""Tiny random-weight SD 1.x models for tests, built with diffusers and transformers.

No model hub is reachable, so every test model is made here: a diffusers folder
(as `StableDiffusionPipeline.save_pretrained` would write it) and the same
weights as one LDM-layout .safetensors written by our own exporter.

Every weight is redrawn with noise scaled to its fan-in: diffusers zero-inits
several output projections, which would let a wrong key or a missing layer go
unnoticed. Weights are drawn from a fixed seed, so building the same variant
twice gives identical models; files are written once per test session.

Use from a test:

    tiny = build_tiny_sd(tmp_path_factory, variant="inpaint", size="medium")
    tiny.folder, tiny.single_file, tiny.unet, tiny.vae, tiny.text_encoder
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# Tests never reach a model hub; make any accidental lookup fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from sd_desktop.engine.checkpoints.keymap import diffusers_to_ldm_checkpoint  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_SOURCE = REPO_ROOT / "resources" / "clip_tokenizer"

Variant = Literal["txt2img", "inpaint"]
Size = Literal["small", "medium"]

# The SD 1.5 scheduler as shipped in runwayml/stable-diffusion-v1-5.
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


@dataclass(frozen=True)
class TinySpec:
    """Shape of one tiny model. The VAE always has 4 levels: 8x downscale, as in SD 1.x."""

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    attention_levels: tuple[int, ...]
    transformer_depth: int
    text_hidden: int
    text_layers: int
    text_intermediate: int
    vae_block_out_channels: tuple[int, ...]
    vae_layers_per_block: int
    seed: int

    @property
    def text_heads(self) -> int:
        # Matches config.clip_heads_for_width: 16-wide heads for widths below 64.
        return self.text_hidden // 16


SIZES: dict[str, TinySpec] = {
    "small": TinySpec(
        block_out_channels=(32, 64),
        layers_per_block=2,
        attention_levels=(0,),
        transformer_depth=1,
        text_hidden=32,
        text_layers=2,
        text_intermediate=64,
        vae_block_out_channels=(32, 32, 64, 64),
        vae_layers_per_block=1,
        seed=1234,
    ),
    "medium": TinySpec(
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        attention_levels=(0, 1),
        transformer_depth=2,
        text_hidden=48,
        text_layers=3,
        text_intermediate=96,
        vae_block_out_channels=(32, 64, 64, 64),
        vae_layers_per_block=2,
        seed=4321,
    ),
}


@dataclass
class TinyModel:
    """A tiny SD 1.x model in memory (diffusers/transformers modules, fp32, eval mode)
    and on disk (`folder`: diffusers layout, `single_file`: LDM .safetensors, fp32)."""

    variant: str
    size: str
    spec: TinySpec
    folder: Path
    single_file: Path
    unet: Any
    vae: Any
    text_encoder: Any
    _exports: dict[str, Path] = field(default_factory=dict, repr=False)

    @property
    def in_channels(self) -> int:
        return 9 if self.variant == "inpaint" else 4

    def ldm_state_dict(self) -> dict[str, torch.Tensor]:
        """The single-file state dict, straight from the in-memory modules."""
        return diffusers_to_ldm_checkpoint(
            self.unet.state_dict(), self.vae.state_dict(), self.text_encoder.state_dict()
        )

    def single_file_as(self, dtype: torch.dtype) -> Path:
        """The single file in another dtype (e.g. torch.float16), written on first use."""
        if dtype == torch.float32:
            return self.single_file
        name = str(dtype).removeprefix("torch.")
        path = self.folder.parent / f"{self.folder.name}-{name}.safetensors"
        if not path.exists():
            _write_atomic(path, lambda tmp: export_single_file(self, tmp, dtype))
        return path

    def tokenizer(self) -> Any:
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(self.folder / "tokenizer")

    def scheduler(self) -> Any:
        from diffusers import PNDMScheduler

        return PNDMScheduler.from_pretrained(self.folder / "scheduler")

    def diffusers_pipeline(self) -> Any:
        """The diffusers reference pipeline over the in-memory modules (no disk reads but
        the tokenizer and scheduler)."""
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

        inpaint = self.variant == "inpaint"
        cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
        return cls(
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer(),
            unet=self.unet,
            scheduler=self.scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )


def randomize_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Redraw every parameter in place: weights ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.1^2),
    biases ~ N(0, 0.1^2). Keeps activations near unit scale through the tiny networks."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if name.endswith("bias"):
                value = 0.1 * noise
            elif param.ndim == 1:
                value = 1.0 + 0.1 * noise
            else:
                fan_in = param[0].numel()
                value = noise / fan_in**0.5
            param.copy_(value)


def _make_unet(spec: TinySpec, in_channels: int) -> Any:
    from diffusers import UNet2DConditionModel

    levels = len(spec.block_out_channels)
    down = tuple(
        "CrossAttnDownBlock2D" if lvl in spec.attention_levels else "DownBlock2D"
        for lvl in range(levels)
    )
    up = tuple(
        "CrossAttnUpBlock2D" if lvl in spec.attention_levels else "UpBlock2D"
        for lvl in reversed(range(levels))
    )
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=spec.block_out_channels,
        layers_per_block=spec.layers_per_block,
        cross_attention_dim=spec.text_hidden,
        attention_head_dim=8,  # diffusers' SD 1.x naming: this is the head COUNT
        transformer_layers_per_block=spec.transformer_depth,
        norm_num_groups=32,
    )


def _make_vae(spec: TinySpec) -> Any:
    from diffusers import AutoencoderKL

    levels = len(spec.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=spec.vae_block_out_channels,
        layers_per_block=spec.vae_layers_per_block,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
        scaling_factor=0.18215,
    )


def _make_text_encoder(spec: TinySpec) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=49408,  # the real CLIP tokenizer's ids must all be valid
        max_position_embeddings=77,
        hidden_size=spec.text_hidden,
        intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )
    return CLIPTextModel(config)


def build_modules(variant: Variant = "txt2img", size: Size = "small") -> tuple[Any, Any, Any]:
    """(unet, vae, text_encoder): fresh, deterministic, fp32, eval mode. Nothing is written."""
    if variant not in ("txt2img", "inpaint"):
        raise ValueError(f"unknown variant {variant!r}")
    spec = SIZES[size]
    generator = torch.Generator().manual_seed(spec.seed + (1 if variant == "inpaint" else 0))
    unet = _make_unet(spec, 9 if variant == "inpaint" else 4)
    vae = _make_vae(spec)
    text_encoder = _make_text_encoder(spec)
    for module in (unet, vae, text_encoder):
        randomize_(module, generator)
        module.eval()
    return unet, vae, text_encoder


def export_single_file(model: TinyModel, path: Path, dtype: torch.dtype = torch.float32) -> None:
    """Write the LDM single file through our exporter (keymap.diffusers_to_ldm_checkpoint)."""
    state = {k: v.to(dtype).contiguous() for k, v in model.ldm_state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


def write_pipeline_files(folder: Path, variant: str = "txt2img") -> None:
    """The weight-free part of a diffusers folder: model_index.json, the SD 1.5 scheduler
    config and the tokenizer. The benchmarks use it too, as the `config=` folder that
    diffusers' from_single_file needs offline."""
    import diffusers

    if (
        not (TOKENIZER_SOURCE / "vocab.json").is_file()
        or not (TOKENIZER_SOURCE / "merges.txt").is_file()
    ):
        raise FileNotFoundError(
            f"CLIP tokenizer files are missing from {TOKENIZER_SOURCE} "
            "(vocab.json and merges.txt are needed to build the tiny test models)"
        )
    inpaint = variant == "inpaint"
    pipeline = "StableDiffusionInpaintPipeline" if inpaint else "StableDiffusionPipeline"
    index = {
        "_class_name": pipeline,
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(SD15_SCHEDULER_CONFIG, indent=2)
    )
    shutil.copytree(TOKENIZER_SOURCE, folder / "tokenizer", dirs_exist_ok=True)
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
    }
    if not (folder / "tokenizer" / "special_tokens_map.json").exists():
        (folder / "tokenizer" / "special_tokens_map.json").write_text(json.dumps(special))


def _write_folder(model: TinyModel, folder: Path) -> None:
    folder.mkdir(parents=True)
    write_pipeline_files(folder, model.variant)
    model.unet.save_pretrained(folder / "unet")
    model.vae.save_pretrained(folder / "vae")
    model.text_encoder.save_pretrained(folder / "text_encoder")


def _write_atomic(path: Path, write: Any) -> None:
    """Write to a temporary sibling, then rename, so a half-written model is never reused."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    write(tmp)
    try:
        tmp.rename(path)
    except OSError:
        if not path.exists():
            raise
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def build_tiny_sd(
    tmp_path_factory: Any, variant: Variant = "txt2img", size: Size = "small"
) -> TinyModel:
    """A tiny model; its files are written once per test session and then reused.

    tmp_path_factory is pytest's session fixture; the files land under its base
    temp dir as tiny-sd/<variant>-<size>/ and tiny-sd/<variant>-<size>.safetensors.
    """
    unet, vae, text_encoder = build_modules(variant, size)
    root = Path(tmp_path_factory.getbasetemp()) / "tiny-sd"
    root.mkdir(exist_ok=True)
    name = f"{variant}-{size}"
    model = TinyModel(
        variant=variant,
        size=size,
        spec=SIZES[size],
        folder=root / name,
        single_file=root / f"{name}.safetensors",
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
    )
    if not model.folder.exists():
        _write_atomic(model.folder, lambda tmp: _write_folder(model, tmp))
    if not model.single_file.exists():
        _write_atomic(model.single_file, lambda tmp: export_single_file(model, tmp))
    return model
