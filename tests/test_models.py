"""Our UNet and VAE against diffusers on the tiny models, and the single-file exporter."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from factories import TinyModel, build_tiny_sd
from sd_desktop.engine.checkpoints.detect import detect_model, shapes_of
from sd_desktop.engine.checkpoints.keymap import split_ldm_checkpoint
from sd_desktop.engine.networks.config import ModelConfig
from sd_desktop.engine.networks.unet import UNetModel, timestep_embedding
from sd_desktop.engine.networks.vae import AutoencoderKL

TOL = 1e-4
COMBOS = [("txt2img", "small"), ("txt2img", "medium"), ("inpaint", "small"), ("inpaint", "medium")]


class Ours:
    def __init__(self, cfg: ModelConfig, unet: UNetModel, vae: AutoencoderKL) -> None:
        self.cfg, self.unet, self.vae = cfg, unet, vae


def load_ours(path) -> Ours:
    """Detect from shapes, build on meta, assign the single file's tensors (no copies)."""
    state = load_file(str(path))
    cfg = detect_model(shapes_of(state))
    unet_sd, vae_sd, _text = split_ldm_checkpoint(state)
    with torch.device("meta"):
        unet = UNetModel(cfg.unet)
        vae = AutoencoderKL(cfg.vae)
    unet.load_state_dict(unet_sd, assign=True)
    vae.load_state_dict(vae_sd, assign=True)
    return Ours(cfg, unet.eval(), vae.eval())


@pytest.fixture(scope="module", params=COMBOS, ids=lambda c: f"{c[0]}-{c[1]}")
def pair(request, tmp_path_factory) -> tuple[TinyModel, Ours]:
    tiny = build_tiny_sd(tmp_path_factory, *request.param)
    return tiny, load_ours(tiny.single_file)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@torch.no_grad()
def test_unet_matches_diffusers(pair):
    tiny, ours = pair
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, tiny.in_channels, 8, 12, generator=g)  # non-square
    ctx = torch.randn(2, 77, ours.cfg.unet.context_dim, generator=g)
    t = torch.tensor([13.5, 901.0])
    want = tiny.unet(x, t, encoder_hidden_states=ctx).sample
    got = ours.unet(x, t, ctx)
    assert got.shape == (2, 4, 8, 12)
    assert want.std() > 0.1  # the comparison is not between two near-zero tensors
    assert _max_diff(got, want) < TOL
    # Cross-attention really reads the context (token order alone would not matter).
    assert _max_diff(ours.unet(x, t, ctx.flip(-1)), got) > 1e-3


@torch.no_grad()
def test_unet_scalar_and_int_timesteps(pair):
    tiny, ours = pair
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, tiny.in_channels, 8, 8, generator=g)
    ctx = torch.randn(2, 77, ours.cfg.unet.context_dim, generator=g)
    want = tiny.unet(x, torch.tensor([500, 500]), encoder_hidden_states=ctx).sample
    for t in (500, 500.0, torch.tensor(500), torch.tensor([500, 500]), torch.tensor([500.0])):
        assert _max_diff(ours.unet(x, t, ctx), want) < TOL
    assert _max_diff(ours.unet(x, 20, ctx), want) > 1e-3


@torch.no_grad()
def test_unet_odd_latent_size(pair):
    """Sizes that do not halve evenly still line up with their skip connections."""
    tiny, ours = pair
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, tiny.in_channels, 9, 7, generator=g)
    ctx = torch.randn(1, 77, ours.cfg.unet.context_dim, generator=g)
    want = tiny.unet(x, torch.tensor([250]), encoder_hidden_states=ctx).sample
    got = ours.unet(x, torch.tensor([250]), ctx)
    assert got.shape == (1, 4, 9, 7)
    assert _max_diff(got, want) < TOL


@torch.no_grad()
def test_vae_matches_diffusers(pair):
    tiny, ours = pair
    g = torch.Generator().manual_seed(4)
    image = torch.rand(2, 3, 64, 48, generator=g) * 2 - 1
    want = tiny.vae.encode(image).latent_dist
    got = ours.vae.encode(image)
    assert got.mean.shape == (2, 4, 8, 6)
    assert want.mean.std() > 0.1
    assert _max_diff(got.mean, want.mean) < TOL
    assert _max_diff(got.mode(), want.mode()) < TOL
    assert _max_diff(got.std, want.std) < TOL
    # Same seed, same noise as diffusers' sampler.
    drawn_want = want.sample(torch.Generator().manual_seed(7))
    drawn_got = got.sample(torch.Generator().manual_seed(7))
    assert _max_diff(drawn_got, drawn_want) < TOL
    assert _max_diff(got.sample(torch.Generator().manual_seed(8)), drawn_got) > 1e-3

    z = torch.randn(1, 4, 8, 6, generator=g)
    decoded_want = tiny.vae.decode(z).sample
    decoded = ours.vae.decode(z)
    assert decoded.shape == (1, 3, 64, 48)
    assert decoded_want.std() > 0.1
    assert _max_diff(decoded, decoded_want) < TOL


def test_timestep_embedding_conventions():
    """Cosines first, frequencies exp(-ln(10000) * i / half) (SD 1.x: flip_sin_to_cos, shift 0)."""
    emb = timestep_embedding(torch.tensor([0.0, 3.0]), 8, torch.float32)
    assert emb.shape == (2, 8)
    assert torch.equal(emb[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]))
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(4) / 4)
    expected = torch.cat([torch.cos(3 * freqs), torch.sin(3 * freqs)])
    assert torch.allclose(emb[1], expected, atol=1e-6)
    assert timestep_embedding(torch.tensor([999]), 8, torch.bfloat16).dtype == torch.bfloat16


@torch.no_grad()
def test_bf16_and_channels_last(tmp_path_factory):
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    ours = load_ours(tiny.single_file)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 8, 8, generator=g)
    ctx = torch.randn(1, 77, ours.cfg.unet.context_dim, generator=g)
    ref = ours.unet(x, 300, ctx)

    last = ours.unet.to(memory_format=torch.channels_last)
    assert _max_diff(last(x.to(memory_format=torch.channels_last), 300, ctx), ref) < TOL

    half = ours.unet.to(torch.bfloat16)
    out = half(x.to(torch.bfloat16), 300, ctx.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 0.05

    vae16 = ours.vae.to(torch.bfloat16)
    image = vae16.decode(torch.randn(1, 4, 8, 8, generator=g).to(torch.bfloat16))
    assert image.dtype == torch.bfloat16 and torch.isfinite(image.float()).all()
    latent = vae16.encode(image).sample(torch.Generator().manual_seed(1))
    assert latent.dtype == torch.bfloat16


@torch.no_grad()
def test_vae_accepts_linear_shaped_attention(tmp_path_factory):
    """Some single files keep the VAE attention projections as [C, C]; they load the same."""
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    ours = load_ours(tiny.single_file)
    _unet, vae_sd, _text = split_ldm_checkpoint(load_file(str(tiny.single_file)))
    flat = {k: (v.flatten(1) if ".attn_1." in k and v.ndim == 4 else v) for k, v in vae_sd.items()}
    assert flat["decoder.mid.attn_1.q.weight"].ndim == 2
    with torch.device("meta"):
        vae = AutoencoderKL(ours.cfg.vae)
    vae.load_state_dict(flat, assign=True)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(6))
    assert torch.equal(vae.eval().decode(z), ours.vae.decode(z))


@pytest.mark.parametrize("variant,size", [("txt2img", "small"), ("inpaint", "medium")])
def test_exported_single_file_loads_in_diffusers(tmp_path_factory, variant, size):
    """Our exporter writes the LDM layout diffusers expects, with nothing lost or renamed."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    tiny = build_tiny_sd(tmp_path_factory, variant, size)
    cls = StableDiffusionInpaintPipeline if variant == "inpaint" else StableDiffusionPipeline
    pipe = cls.from_single_file(str(tiny.single_file), config=str(tiny.folder))
    for name in ("unet", "vae", "text_encoder"):
        got = getattr(pipe, name).state_dict()
        want = getattr(tiny, name).state_dict()
        assert set(got) == set(want), name
        for key, tensor in want.items():
            assert torch.equal(got[key], tensor), key


def test_fp16_export(tmp_path_factory):
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    full = load_file(str(tiny.single_file))
    half = load_file(str(tiny.single_file_as(torch.float16)))
    assert set(half) == set(full)
    assert all(t.dtype == torch.float16 for t in half.values())
    key = "model.diffusion_model.out.2.weight"
    assert torch.equal(half[key], full[key].half())
    assert detect_model(shapes_of(half)) == detect_model(shapes_of(full))


def test_diffusers_folder_is_complete(tmp_path_factory):
    """The folder loads as a diffusers pipeline offline, tokenizer and scheduler included."""
    from diffusers import StableDiffusionPipeline

    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.folder))
    assert pipe.tokenizer("a cat").input_ids == [49406, 320, 2368, 49407]
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"
    assert pipe.scheduler.config.steps_offset == 1
    assert torch.equal(pipe.unet.conv_out.weight, tiny.unet.conv_out.weight)
    assert tiny.unet.conv_out.weight.abs().min() > 0  # redrawn, not diffusers' zero init


def test_reference_pipeline_runs(tmp_path_factory):
    """TinyModel.diffusers_pipeline() gives other tests a working numerical reference."""
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    pipe = tiny.diffusers_pipeline()
    images = pipe(
        "a cat",
        num_inference_steps=2,
        height=64,
        width=64,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert images.shape == (1, 64, 64, 3)
    assert images.std() > 0.01
