"""The bf16 path (the default on CPUs with native bf16) stays close to fp32.

Stated tolerance, on the tiny random-weight models: a whole txt2img image in bf16
differs from fp32 by under 4/255 on average (measured 1.5-2.3) and no pixel by
more than 48/255 (measured 10-17), while a different seed differs by ~60/255.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from factories import build_tiny_sd
from sd_desktop.engine.model import load_model
from sd_desktop.engine.pipeline import generate
from sd_desktop.engine.request import GenerationRequest

MEAN_TOLERANCE = 4.0
MAX_TOLERANCE = 48


@pytest.fixture(scope="module", params=["small", "medium"])
def pair(request, tmp_path_factory):
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", request.param)
    fp32 = load_model(tiny.single_file, device="cpu", dtype="fp32")
    bf16 = load_model(tiny.single_file, device="cpu", dtype="bf16")
    return tiny, fp32, bf16


def _pixels(model, **overrides) -> np.ndarray:
    fields = dict(prompt="a lighthouse at dusk", width=64, height=64, steps=8, seed=5)
    request = GenerationRequest(**(fields | overrides))
    return np.asarray(generate(model, request).images[0], dtype=np.float32)


@pytest.mark.parametrize("sampler", ["euler_a", "dpmpp_2m_karras"])
def test_bf16_image_is_close_to_fp32(pair, sampler):
    _tiny, fp32, bf16 = pair
    want = _pixels(fp32, sampler=sampler)
    got = _pixels(bf16, sampler=sampler)
    difference = np.abs(got - want)
    assert difference.mean() < MEAN_TOLERANCE
    assert difference.max() <= MAX_TOLERANCE
    # The tolerance is far below what a real change of the image looks like.
    other_seed = _pixels(fp32, sampler=sampler, seed=6)
    assert np.abs(other_seed - want).mean() > 5 * MEAN_TOLERANCE


def test_bf16_unet_and_vae_are_close_to_fp32(pair):
    tiny, fp32, bf16 = pair
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 4, 8, 8, generator=g)
    ctx = torch.randn(2, 77, tiny.spec.text_hidden, generator=g)
    t = torch.tensor([700.0, 40.0])
    with torch.inference_mode():
        want = fp32.unet(x, t, ctx)
        got = bf16.unet(x.bfloat16(), t, ctx.bfloat16()).float()
        relative = (got - want).norm() / want.norm()
        assert relative < 0.03
        z = torch.randn(1, 4, 8, 8, generator=g)
        decoded = (bf16.vae.decode(z.bfloat16()).float() - fp32.vae.decode(z)).abs().mean()
        assert decoded < 0.02


def test_bf16_model_computes_in_bf16(pair):
    """Every convolution and linear layer sees bf16 inputs: no silent fp32 detours."""
    _tiny, _fp32, bf16 = pair
    seen: set[torch.dtype] = set()
    layers = [
        m
        for net in (bf16.unet, bf16.vae, bf16.text.text_model)
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    handles = [
        m.register_forward_pre_hook(lambda _m, args: seen.add(args[0].dtype)) for m in layers
    ]
    try:
        _pixels(bf16, steps=2)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == {torch.bfloat16}
    weights = {
        p.dtype for net in (bf16.unet, bf16.vae, bf16.text.text_model) for p in net.parameters()
    }
    assert weights == {torch.bfloat16}
