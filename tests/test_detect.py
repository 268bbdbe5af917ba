"""Architecture detection from shapes: tiny models, full SD 1.5, and families we refuse."""

from __future__ import annotations

import pytest
import torch

from factories import SIZES, build_modules
from sd_desktop.engine.checkpoints.detect import count_parameters, detect_model, shapes_of
from sd_desktop.engine.checkpoints.keymap import (
    TEXT_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    diffusers_to_ldm_checkpoint,
    split_ldm_checkpoint,
    text_keys_for,
    unet_diffusers_to_ldm,
    vae_diffusers_to_ldm,
)
from sd_desktop.engine.errors import CheckpointError, UnsupportedModelError
from sd_desktop.engine.networks.config import ModelConfig, UNetConfig
from sd_desktop.engine.networks.unet import UNetModel
from sd_desktop.engine.networks.vae import AutoencoderKL

Shapes = dict[str, tuple[int, ...]]


def tiny_shapes(variant: str, size: str) -> Shapes:
    unet, vae, text = build_modules(variant, size)
    sd = diffusers_to_ldm_checkpoint(unet.state_dict(), vae.state_dict(), text.state_dict())
    return shapes_of(sd)


@pytest.fixture(scope="module")
def sd15_shapes() -> Shapes:
    """Every key and shape of a real SD 1.5 single file, built on the meta device."""
    from diffusers import AutoencoderKL as DiffusersVAE
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
        )
        vae = DiffusersVAE(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            sample_size=512,
        )
        text = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                projection_dim=768,
            )
        )
    sd = diffusers_to_ldm_checkpoint(unet.state_dict(), vae.state_dict(), text.state_dict())
    return shapes_of(sd)


@pytest.mark.parametrize("variant", ["txt2img", "inpaint"])
@pytest.mark.parametrize("size", ["small", "medium"])
def test_tiny_models_detected(variant, size):
    spec = SIZES[size]
    cfg = detect_model(tiny_shapes(variant, size))
    assert cfg.family == ("sd1-inpaint" if variant == "inpaint" else "sd1")
    assert cfg.family_name == ("SD 1.x inpainting" if variant == "inpaint" else "SD 1.x")
    unet = cfg.unet
    assert unet.in_channels == (9 if variant == "inpaint" else 4)
    assert unet.out_channels == 4
    assert unet.model_channels == spec.block_out_channels[0]
    mult = tuple(c // spec.block_out_channels[0] for c in spec.block_out_channels)
    assert unet.channel_mult == mult
    assert unet.num_res_blocks == spec.layers_per_block
    assert unet.attention_levels == spec.attention_levels
    assert unet.transformer_depth == spec.transformer_depth
    assert unet.context_dim == spec.text_hidden
    vae = cfg.vae
    assert vae.base_channels == spec.vae_block_out_channels[0]
    assert vae.base_channels * vae.channel_mult[-1] == spec.vae_block_out_channels[-1]
    assert vae.num_res_blocks == spec.vae_layers_per_block
    assert vae.latent_channels == 4 and vae.downscale == 8
    text = cfg.text
    assert (text.hidden_size, text.num_layers) == (spec.text_hidden, spec.text_layers)
    assert text.num_heads == spec.text_heads
    assert text.intermediate_size == spec.text_intermediate
    assert (text.vocab_size, text.max_position_embeddings) == (49408, 77)


def test_full_sd15_from_shapes(sd15_shapes):
    cfg = detect_model(sd15_shapes)
    assert cfg == ModelConfig(family="sd1", unet=UNetConfig(), vae=cfg.vae, text=cfg.text)
    assert cfg.unet.model_channels == 320
    assert cfg.unet.channel_mult == (1, 2, 4, 4)
    assert cfg.unet.num_res_blocks == 2
    assert cfg.unet.attention_levels == (0, 1, 2)
    assert cfg.unet.context_dim == 768
    assert (cfg.vae.base_channels, cfg.vae.channel_mult) == (128, (1, 2, 4, 4))
    assert (cfg.text.hidden_size, cfg.text.num_layers, cfg.text.num_heads) == (768, 12, 12)

    from transformers import CLIPTextModel

    with torch.device("meta"):
        unet = UNetModel(cfg.unet)
        vae = AutoencoderKL(cfg.vae)
        text = CLIPTextModel(cfg.text.to_clip_config())

    def params(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert params(unet) == 859_520_964
    assert params(vae) == 83_653_863
    assert params(text) == 123_060_480
    assert count_parameters(sd15_shapes, UNET_PREFIX) == 859_520_964
    assert count_parameters(sd15_shapes, VAE_PREFIX) == 83_653_863
    assert count_parameters(sd15_shapes, TEXT_PREFIX) == 123_060_480


def test_older_text_layout_and_extra_buffers(sd15_shapes):
    """Old files lack 'text_model.' and carry position_ids, EMA copies and VAE loss terms."""
    old = {k.replace("transformer.text_model.", "transformer."): v for k, v in sd15_shapes.items()}
    old[TEXT_PREFIX + "embeddings.position_ids"] = (1, 77)
    old["model_ema.decay"] = ()
    old["alphas_cumprod"] = (1000,)
    old[VAE_PREFIX + "loss.logvar"] = ()
    assert detect_model(old) == detect_model(sd15_shapes)


def test_linear_shaped_vae_attention_accepted(sd15_shapes):
    shapes = dict(sd15_shapes)
    for part in ("encoder", "decoder"):
        for name in ("q", "k", "v", "proj_out"):
            shapes[f"{VAE_PREFIX}{part}.mid.attn_1.{name}.weight"] = (512, 512)
    assert detect_model(shapes) == detect_model(sd15_shapes)


def test_nine_channel_unet_is_inpainting(sd15_shapes):
    shapes = dict(sd15_shapes)
    shapes[UNET_PREFIX + "input_blocks.0.0.weight"] = (320, 9, 3, 3)
    cfg = detect_model(shapes)
    assert cfg.family == "sd1-inpaint" and cfg.is_inpainting
    assert cfg.unet.in_channels == 9
    assert cfg.family_name == "SD 1.x inpainting"


def _sdxl_like(sd15: Shapes) -> Shapes:
    shapes = {k: v for k, v in sd15.items() if not k.startswith("cond_stage_model.")}
    for key, shape in list(shapes.items()):
        if key.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
            shapes[key] = (shape[0], 2048)
    shapes[UNET_PREFIX + "label_emb.0.0.weight"] = (1280, 2816)
    shapes["conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"] = (
        49408,
        768,
    )
    shapes["conditioner.embedders.1.model.token_embedding.weight"] = (49408, 1280)
    return shapes


def test_sdxl_refused(sd15_shapes):
    full = _sdxl_like(sd15_shapes)
    unet_only = {k: v for k, v in full.items() if not k.startswith("conditioner.")}
    context_only = {k: v for k, v in unet_only.items() if "label_emb" not in k}
    for shapes in (full, unet_only, context_only):
        with pytest.raises(UnsupportedModelError, match="SDXL checkpoints are not supported yet"):
            detect_model(shapes)


def test_sd2_refused(sd15_shapes):
    shapes = {k: v for k, v in sd15_shapes.items() if not k.startswith("cond_stage_model.")}
    for key, shape in list(shapes.items()):
        if key.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
            shapes[key] = (shape[0], 1024)
        if key.endswith(("proj_in.weight", "proj_out.weight")) and key.startswith(UNET_PREFIX):
            shapes[key] = shape[:2]  # SD 2.x uses Linear projections
    openclip = dict(shapes)
    openclip["cond_stage_model.model.token_embedding.weight"] = (49408, 1024)
    openclip["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = (3072, 1024)
    for case in (openclip, shapes):
        with pytest.raises(UnsupportedModelError, match=r"SD 2\.x checkpoints are not supported"):
            detect_model(case)


def _drop(shapes: Shapes, prefix: str) -> Shapes:
    return {k: v for k, v in shapes.items() if not k.startswith(prefix)}


def test_missing_components_are_checkpoint_errors(sd15_shapes):
    cases = [
        (_drop(sd15_shapes, VAE_PREFIX), r"no VAE weights \(first_stage_model\.\*\)"),
        (_drop(sd15_shapes, "cond_stage_model."), r"no text encoder weights"),
        (_drop(sd15_shapes, UNET_PREFIX), r"no UNet weights \(model\.diffusion_model\.\*\)"),
    ]
    for shapes, message in cases:
        with pytest.raises(CheckpointError, match=message) as info:
            detect_model(shapes)
        assert not isinstance(info.value, UnsupportedModelError)


def test_incomplete_or_misshaped_weights_named(sd15_shapes):
    missing = dict(sd15_shapes)
    del missing[UNET_PREFIX + "output_blocks.4.1.transformer_blocks.0.ff.net.2.bias"]
    with pytest.raises(CheckpointError, match=r"incomplete: '.*output_blocks\.4\.1\..*ff\.net\.2"):
        detect_model(missing)
    wrong = dict(sd15_shapes)
    wrong[VAE_PREFIX + "decoder.up.1.block.0.conv2.weight"] = (256, 256, 1, 1)
    with pytest.raises(CheckpointError, match=r"decoder\.up\.1\.block\.0\.conv2\.weight.*shape"):
        detect_model(wrong)
    text = dict(sd15_shapes)
    text[TEXT_PREFIX + "text_model.encoder.layers.3.mlp.fc2.weight"] = (768, 1000)
    with pytest.raises(CheckpointError, match=r"layers\.3\.mlp\.fc2"):
        detect_model(text)
    mismatch = dict(sd15_shapes)
    mismatch[TEXT_PREFIX + "text_model.embeddings.token_embedding.weight"] = (49408, 640)
    with pytest.raises(CheckpointError, match="640 wide"):
        detect_model(mismatch)


def test_other_files_refused_with_a_reason(sd15_shapes):
    pix2pix = dict(sd15_shapes)
    pix2pix[UNET_PREFIX + "input_blocks.0.0.weight"] = (320, 8, 3, 3)
    with pytest.raises(UnsupportedModelError, match="8 input channels"):
        detect_model(pix2pix)
    lora = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320, 1, 1)}
    with pytest.raises(UnsupportedModelError, match="LoRA"):
        detect_model(lora)
    vae_only = {k.removeprefix(VAE_PREFIX): v for k, v in sd15_shapes.items() if VAE_PREFIX in k}
    with pytest.raises(UnsupportedModelError, match="standalone VAE"):
        detect_model(vae_only)
    flux_like = {UNET_PREFIX + "double_blocks.0.img_attn.qkv.weight": (9216, 3072)}
    with pytest.raises(UnsupportedModelError, match="no input_blocks"):
        detect_model(flux_like)
    with pytest.raises(CheckpointError, match="no UNet weights"):
        detect_model({"something.else": (3,)})


def test_split_and_text_keys_fit_modules(tmp_path_factory):
    """split_ldm_checkpoint + text_keys_for give dicts that load strictly into each module."""
    from transformers import CLIPTextModel

    unet, vae, text = build_modules("txt2img", "small")
    sd = diffusers_to_ldm_checkpoint(unet.state_dict(), vae.state_dict(), text.state_dict())
    cfg = detect_model(shapes_of(sd))
    unet_sd, vae_sd, text_sd = split_ldm_checkpoint(sd)
    assert all(k.startswith(("embeddings.", "encoder.", "final_layer_norm.")) for k in text_sd)
    with torch.device("meta"):
        ours_unet, ours_vae = UNetModel(cfg.unet), AutoencoderKL(cfg.vae)
    ours_unet.load_state_dict(unet_sd, assign=True)
    ours_vae.load_state_dict(vae_sd, assign=True)
    clip = CLIPTextModel(cfg.text.to_clip_config())
    clip.load_state_dict(text_keys_for(text_sd, clip))
    ids = torch.tensor([[49406, 320, 2368, 49407] + [49407] * 73])
    with torch.no_grad():
        got = clip(ids).last_hidden_state
        want = text(ids).last_hidden_state
    assert torch.equal(got, want)


def test_diffusers_key_conversion_details():
    unet, vae, _text = build_modules("txt2img", "medium")
    ldm_unet = unet_diffusers_to_ldm(unet.state_dict())
    # medium: 3 levels, 1 res block each, attention on levels 0 and 1.
    assert "input_blocks.2.0.op.weight" in ldm_unet
    assert "input_blocks.3.1.proj_in.weight" in ldm_unet
    assert "output_blocks.1.1.conv.weight" in ldm_unet  # deepest level: no attention
    assert "output_blocks.3.2.conv.weight" in ldm_unet  # after the attention
    assert "middle_block.1.transformer_blocks.1.attn2.to_k.weight" in ldm_unet
    assert "time_embed.2.bias" in ldm_unet and "out.2.weight" in ldm_unet
    ldm_vae = vae_diffusers_to_ldm(vae.state_dict())
    # The decoder's first up-block (deepest) is LDM level 3.
    assert torch.equal(
        ldm_vae["decoder.up.3.block.0.conv1.weight"],
        vae.state_dict()["decoder.up_blocks.0.resnets.0.conv1.weight"],
    )
    assert "decoder.up.0.upsample.conv.weight" not in ldm_vae
    assert ldm_vae["encoder.mid.attn_1.q.weight"].shape == (64, 64, 1, 1)
    assert "encoder.down.0.block.0.nin_shortcut.weight" not in ldm_vae
    assert "encoder.down.1.block.0.nin_shortcut.weight" in ldm_vae
    with pytest.raises(CheckpointError, match="Unexpected UNet weight 'add_embedding"):
        unet_diffusers_to_ldm({**unet.state_dict(), "add_embedding.linear_1.weight": torch.ones(1)})
