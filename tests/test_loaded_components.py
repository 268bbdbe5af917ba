"""Both loading paths (diffusers folder, LDM single file) give diffusers' numbers.

load_model is the real entry point: these go through file parsing, key mapping,
shape detection and weight adoption, then compare each network to diffusers.
"""

from __future__ import annotations

import pytest
import torch

from factories import build_tiny_sd
from sd_desktop.engine.model import load_model
from sd_desktop.engine.previews import latents_to_rgb_fast

ATOL = 1e-4


@pytest.fixture(scope="module", params=["small", "medium"])
def tiny(request, tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", request.param)


@pytest.fixture(scope="module", params=["folder", "single_file"])
def loaded(request, tiny):
    return load_model(getattr(tiny, request.param), device="cpu", dtype="fp32")


def _diffusers_embeddings(tiny, prompt: str) -> torch.Tensor:
    tokenizer = tiny.tokenizer()
    ids = tokenizer(
        prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        return tiny.text_encoder(ids)[0]


def test_text_embeddings(tiny, loaded):
    prompt = "a lighthouse on a cliff at dusk, oil painting"
    cond, uncond = loaded.encode_prompts(prompt, "", clip_skip=1)
    assert cond.shape == uncond.shape == (1, 77, tiny.spec.text_hidden)
    torch.testing.assert_close(cond, _diffusers_embeddings(tiny, prompt), atol=ATOL, rtol=0)
    torch.testing.assert_close(uncond, _diffusers_embeddings(tiny, ""), atol=ATOL, rtol=0)


def test_unet_call(tiny, loaded):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 12, generator=g)
    context = torch.randn(2, 77, tiny.spec.text_hidden, generator=g)
    t = torch.tensor([981, 17])
    with torch.no_grad():
        ours = loaded.unet(x, t, context)
        theirs = tiny.unet(x, t, encoder_hidden_states=context).sample
    assert theirs.abs().mean() > 1e-3
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_vae_encode_decode(tiny, loaded):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 64, 96, generator=g) * 2 - 1
    with torch.no_grad():
        ours = loaded.vae.encode(image)
        theirs = tiny.vae.encode(image).latent_dist
        torch.testing.assert_close(ours.mean, theirs.mean, atol=ATOL, rtol=0)
        torch.testing.assert_close(ours.std, theirs.std, atol=ATOL, rtol=0)
        z = torch.randn(1, 4, 8, 12, generator=g)
        torch.testing.assert_close(
            loaded.vae.decode(z), tiny.vae.decode(z).sample, atol=ATOL, rtol=0
        )
        # The posterior sample draws from the generator exactly as diffusers does.
        a = ours.sample(torch.Generator().manual_seed(3))
        b = theirs.sample(torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_previews(loaded):
    x0 = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(4))
    fast = loaded.preview_fast(x0)
    assert fast.shape == (2, 8, 12, 3) and fast.dtype == torch.uint8
    assert torch.equal(fast, latents_to_rgb_fast(x0))
    full = loaded.preview_full(x0)
    assert full.shape == (2, 64, 96, 3) and full.dtype == torch.uint8
    assert full.float().std() > 1.0


def test_fast_preview_colours_follow_latent_factors():
    """A latent pushed along channel 3 reads blue-ish darker than red (SD1 factors)."""
    latents = torch.zeros(1, 4, 2, 2)
    latents[:, 3] = -1.0
    rgb = latents_to_rgb_fast(latents)[0, 0, 0].tolist()
    assert rgb[2] > rgb[0] > 127
