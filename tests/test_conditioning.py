"""Text conditioning against diffusers' encode_prompt, plus A1111 chunking and weighting.

A tiny random CLIP text tower (real vocabulary and context, narrow and shallow)
stands in for CLIP-L; every weight carries noise so no path is trivially zero.
"""

from __future__ import annotations

import socket
import types

import pytest
import torch
from transformers import CLIPTextModel

from sd_desktop.engine.errors import CheckpointError, InvalidRequestError
from sd_desktop.engine.networks.config import TextEncoderConfig
from sd_desktop.engine.networks.text_encoder import clip_text_config, load_text_model
from sd_desktop.engine.text.conditioning import (
    CHUNK_TOKENS,
    MAX_CHUNKS,
    TextConditioner,
    chunk_prompt,
    empty_chunk,
)
from sd_desktop.engine.text.tokenizer import load_tokenizer

CONFIG = TextEncoderConfig(hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64)
# One-token words (checked below), so token counts follow word counts.
WORDS = "cat dog red blue green house tree car sun moon star sky sea road hill".split()
ATOL = 1e-5


def random_state_dict(config: TextEncoderConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        shapes = {
            k: v.shape for k, v in CLIPTextModel(clip_text_config(config)).state_dict().items()
        }
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for key, shape in shapes.items():
        noise = torch.randn(shape, generator=gen)
        if "layer_norm" in key and key.endswith("weight"):
            weights[key] = 1.0 + 0.3 * noise
        elif "embedding" in key:
            weights[key] = 0.8 * noise
        else:
            weights[key] = 0.25 * noise
    return weights


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def model():
    return load_text_model(CONFIG, random_state_dict(CONFIG))


@pytest.fixture(scope="module")
def conditioner(tokenizer, model):
    return TextConditioner(tokenizer, model)


class _DiffusersView:
    """diffusers reaches `text_encoder.text_model`, which transformers 5 flattened away."""

    def __init__(self, model: CLIPTextModel) -> None:
        self.model = model
        self.config = model.config
        self.dtype = model.dtype
        self.text_model = getattr(model, "text_model", model)

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def diffusers_encode(tokenizer, model, prompts, negatives=None, clip_skip=None):
    from diffusers import StableDiffusionPipeline

    host = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=_DiffusersView(model))
    with torch.no_grad():
        return StableDiffusionPipeline.encode_prompt(
            host,
            prompts,
            model.device,
            1,
            negatives is not None,
            negative_prompt=negatives,
            clip_skip=clip_skip,
        )


def words(count: int, start: int = 0) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(count))


def test_test_words_are_single_tokens(tokenizer):
    assert len(tokenizer(words(40), add_special_tokens=False).input_ids) == 40


PLAIN = ["a photo of a cat", "", "An astronaut riding a horse, 4k!", words(75)]


def test_plain_prompts_match_diffusers(tokenizer, model, conditioner):
    expected, _ = diffusers_encode(tokenizer, model, PLAIN)
    ours = conditioner.encode(PLAIN)
    assert ours.shape == (len(PLAIN), 77, CONFIG.hidden_size)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def test_clip_skip_2_matches_diffusers_clip_skip_1(tokenizer, model, conditioner):
    expected, _ = diffusers_encode(tokenizer, model, PLAIN, clip_skip=1)
    ours = conditioner.encode(PLAIN, clip_skip=2)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)
    # and it really is a different layer
    assert (ours - conditioner.encode(PLAIN)).abs().max() > 0.1


def test_negative_prompts_match_diffusers(tokenizer, model, conditioner):
    prompts = ["a photo of a cat", "a dog"]
    negatives = ["", "blurry, low quality"]
    cond_ref, uncond_ref = diffusers_encode(tokenizer, model, prompts, negatives)
    cond, uncond = conditioner.encode_pair(prompts, negatives)
    torch.testing.assert_close(cond, cond_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(uncond, uncond_ref, atol=ATOL, rtol=0)


def test_single_negative_is_shared_by_every_prompt(conditioner):
    _, uncond = conditioner.encode_pair(["a cat", "a dog"], "ugly")
    expected = conditioner.encode("ugly")
    torch.testing.assert_close(uncond, torch.cat([expected, expected]), atol=0, rtol=0)
    with pytest.raises(InvalidRequestError, match="negative prompts"):
        conditioner.encode_pair(["a", "b", "c"], ["x", "y"])


def test_long_prompt_gives_two_chunks(tokenizer, model, conditioner):
    prompt = words(100)
    out = conditioner.encode(prompt)
    assert out.shape == (1, 154, CONFIG.hidden_size)
    first = conditioner.encode(words(75))
    second = conditioner.encode(words(25, start=75))
    torch.testing.assert_close(out[:, :77], first, atol=ATOL, rtol=0)
    torch.testing.assert_close(out[:, 77:], second, atol=ATOL, rtol=0)
    # diffusers truncates to the same first 75 tokens
    truncated, _ = diffusers_encode(tokenizer, model, prompt)
    torch.testing.assert_close(out[:, :77], truncated, atol=ATOL, rtol=0)


def test_chunks_wrap_tokens_in_bos_eos_and_pad(tokenizer):
    chunks = chunk_prompt(tokenizer, words(80))
    assert len(chunks) == 2
    ids = tokenizer(words(80), add_special_tokens=False).input_ids
    assert chunks[0].token_ids == (49406, *ids[:75], 49407)
    assert chunks[1].token_ids == (49406, *ids[75:], *[49407] * 70, 49407)
    assert all(len(c.token_ids) == len(c.weights) == 77 for c in chunks)
    assert chunk_prompt(tokenizer, words(75)) == chunk_prompt(tokenizer, words(75))[:1]
    assert len(chunk_prompt(tokenizer, words(75))) == 1
    assert empty_chunk(tokenizer).token_ids == (49406, *[49407] * 76)


def test_comma_near_the_end_moves_the_tail_to_the_next_chunk(tokenizer):
    # comma is token 66 (index 65): 10 tokens after it when the chunk fills up
    prompt = f"{words(65)}, {words(20, start=3)}"
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    assert ids[65] == 267 and len(ids) == 86
    first, second = chunk_prompt(tokenizer, prompt)
    assert first.token_ids[1:67] == tuple(ids[:66])  # ends with the comma
    assert set(first.token_ids[67:]) == {49407}
    assert second.token_ids[1:21] == tuple(ids[66:])


def test_comma_too_far_back_does_not_move_anything(tokenizer):
    # comma at index 50: 24 tokens after it when the chunk fills, beyond the 20 allowed
    prompt = f"{words(50)}, {words(40)}"
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    assert ids[50] == 267
    first, second = chunk_prompt(tokenizer, prompt)
    assert first.token_ids[1:76] == tuple(ids[:75])
    assert second.token_ids[1:17] == tuple(ids[75:])


def test_break_starts_a_new_chunk(conditioner):
    out = conditioner.encode("a photo of a cat BREAK a dog")
    expected = torch.cat([conditioner.encode("a photo of a cat"), conditioner.encode("a dog")], 1)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert len(conditioner.chunk("BREAK a dog")) == 2  # leading BREAK leaves an empty chunk
    assert len(conditioner.chunk("a dog BREAK")) == 1


def test_weighting_scales_only_the_weighted_token_and_restores_the_mean(conditioner, tokenizer):
    base = conditioner.encode("a cat photo")[0].double()
    weighted = conditioner.encode("a (cat:1.5) photo")[0].double()
    chunk = conditioner.chunk("a (cat:1.5) photo")[0]
    assert chunk.token_ids == tuple(tokenizer("a cat photo", padding="max_length").input_ids)
    assert chunk.weights[2] == 1.5 and chunk.weights.count(1.0) == 76

    ratio = base.mean() / (base * torch.tensor(chunk.weights, dtype=torch.float64)[:, None]).mean()
    assert abs(ratio - 1) > 1e-3  # the restoration is doing something
    assert weighted.mean().item() == pytest.approx(base.mean().item(), rel=1e-5)
    others = [i for i in range(77) if i != 2]
    torch.testing.assert_close(weighted[others], ratio * base[others], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weighted[2], 1.5 * ratio * base[2], atol=1e-5, rtol=1e-5)
    # relative to any other token, only the weighted one grew
    rel = weighted.norm(dim=1) / base.norm(dim=1)
    assert rel[2] / rel[5] == pytest.approx(1.5, rel=1e-5)
    assert rel[0] / rel[5] == pytest.approx(1.0, rel=1e-5)


def test_square_brackets_de_emphasise(conditioner):
    base = conditioner.encode("a cat photo")[0]
    weighted = conditioner.encode("a [cat] photo")[0]
    rel = weighted.norm(dim=1) / base.norm(dim=1)
    assert (rel[2] / rel[1]).item() == pytest.approx(1 / 1.1, rel=1e-5)


def test_weighting_does_not_depend_on_batch_companions(conditioner):
    alone = conditioner.encode("a (cat:1.4) photo")
    batched = conditioner.encode(["a (cat:1.4) photo", "a [[dog]]", words(90)])
    torch.testing.assert_close(batched[:1, :77], alone, atol=ATOL, rtol=0)


def test_batch_pads_shorter_prompts_with_empty_chunks(conditioner):
    out = conditioner.encode(["a cat", words(100)])
    assert out.shape == (2, 154, CONFIG.hidden_size)
    empty = conditioner.encode("")
    torch.testing.assert_close(out[:1, :77], conditioner.encode("a cat"), atol=ATOL, rtol=0)
    torch.testing.assert_close(out[:1, 77:], empty, atol=ATOL, rtol=0)


@pytest.mark.parametrize("long_side", ["positive", "negative"])
def test_pair_pads_the_shorter_side_to_equal_chunks(conditioner, long_side):
    long, short = words(100) + " BREAK a cat", "a dog"
    prompt, negative = (long, short) if long_side == "positive" else (short, long)
    cond, uncond = conditioner.encode_pair(prompt, negative, clip_skip=2)
    assert cond.shape == uncond.shape == (1, 231, CONFIG.hidden_size)
    padded = uncond if long_side == "positive" else cond
    empty = conditioner.encode("", clip_skip=2)
    torch.testing.assert_close(
        padded[:, :77], conditioner.encode(short, clip_skip=2), atol=ATOL, rtol=0
    )
    torch.testing.assert_close(padded[:, 77:154], empty, atol=ATOL, rtol=0)
    torch.testing.assert_close(padded[:, 154:], empty, atol=ATOL, rtol=0)


@pytest.mark.parametrize("clip_skip", [0, 4, -1, 1.5, True])
def test_bad_clip_skip_is_rejected(conditioner, clip_skip):
    with pytest.raises(InvalidRequestError, match="Clip skip"):
        conditioner.encode("a cat", clip_skip=clip_skip)


def test_clip_skip_up_to_layer_count_is_allowed(conditioner):
    assert conditioner.encode("a cat", clip_skip=3).shape == (1, 77, CONFIG.hidden_size)


def test_overlong_and_empty_requests_are_rejected(conditioner):
    with pytest.raises(InvalidRequestError, match="too long"):
        conditioner.encode(words(CHUNK_TOKENS * MAX_CHUNKS + 1))
    with pytest.raises(InvalidRequestError, match="too long"):
        conditioner.encode("x" * 100_000)
    with pytest.raises(InvalidRequestError, match="No prompt"):
        conditioner.encode([])


def test_runs_in_the_model_dtype(tokenizer):
    model64 = load_text_model(CONFIG, random_state_dict(CONFIG), dtype=torch.float64)
    out = TextConditioner(tokenizer, model64).encode("a (cat:1.2) photo", clip_skip=2)
    assert out.dtype == torch.float64 and out.device == model64.device
    expected, _ = diffusers_encode(tokenizer, model64, "a cat photo", clip_skip=1)
    assert not torch.equal(out, expected)  # weighted, so it differs ...
    plain = TextConditioner(tokenizer, model64).encode("a cat photo", clip_skip=2)
    torch.testing.assert_close(plain, expected, atol=1e-12, rtol=0)  # ... and plain is exact


# --- loading the text model -------------------------------------------------------------


def test_loader_accepts_both_key_namings_and_ignores_position_ids(model):
    weights = random_state_dict(CONFIG)
    prefixed = {f"text_model.{k}": v for k, v in weights.items()}
    prefixed["text_model.embeddings.position_ids"] = torch.full((1, 77), 3.7)  # corrupt
    a = load_text_model(CONFIG, weights)
    b = load_text_model(CONFIG, prefixed)
    ids = torch.randint(0, 49408, (2, 77), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(a(ids).last_hidden_state, b(ids).last_hidden_state)
        torch.testing.assert_close(a(ids).last_hidden_state, model(ids).last_hidden_state)
    positions = getattr(b, "text_model", b).embeddings.position_ids
    assert torch.equal(positions, torch.arange(77)[None])


def test_loader_matches_a_conventionally_built_model():
    weights = random_state_dict(CONFIG, seed=5)
    loaded = load_text_model(CONFIG, weights)
    reference = CLIPTextModel(clip_text_config(CONFIG)).eval()
    reference.load_state_dict(weights)
    ids = torch.randint(0, 49408, (2, 77), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).last_hidden_state, reference(ids).last_hidden_state)


def test_loader_assigns_tensors_without_copying():
    weights = random_state_dict(CONFIG)
    model = load_text_model(CONFIG, weights)
    token_embedding = getattr(model, "text_model", model).embeddings.token_embedding.weight
    assert token_embedding.data_ptr() == weights["embeddings.token_embedding.weight"].data_ptr()
    assert model.config._attn_implementation == "sdpa"
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def test_loader_converts_dtype():
    weights = {k: v.half() for k, v in random_state_dict(CONFIG).items()}
    model = load_text_model(CONFIG, weights, dtype=torch.float32)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.pop("final_layer_norm.weight"), "missing final_layer_norm.weight"),
        (lambda w: w.update({"encoder.layers.9.mlp.fc1.weight": torch.zeros(1)}), "unexpected"),
        (lambda w: w.update({"final_layer_norm.bias": torch.zeros(33)}), "shape"),
        (
            lambda w: w.update({"final_layer_norm.bias": torch.zeros(32, dtype=torch.long)}),
            "floating-point",
        ),
    ],
)
def test_loader_rejects_mismatched_weights(change, message):
    weights = random_state_dict(CONFIG)
    change(weights)
    with pytest.raises(CheckpointError, match=message):
        load_text_model(CONFIG, weights)


def test_nothing_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    conditioner = TextConditioner(
        load_tokenizer(), load_text_model(CONFIG, random_state_dict(CONFIG))
    )
    assert conditioner.encode("a cat").shape == (1, 77, CONFIG.hidden_size)
