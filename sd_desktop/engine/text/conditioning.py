"""Prompts to CLIP hidden states, with AUTOMATIC1111's long-prompt and weighting rules.

Stable Diffusion users expect A1111's behaviour: prompts longer than 75 tokens are
split into 77-token chunks encoded separately and concatenated, "(word:1.3)" scales
that word's hidden states, and "clip skip" picks an earlier layer. A plain prompt of
at most 75 tokens gives exactly what diffusers' pipeline gives, so seeds match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import CLIPTextModel, CLIPTokenizer

from sd_desktop.engine.errors import InvalidRequestError
from sd_desktop.engine.networks.text_encoder import text_transformer
from sd_desktop.engine.text.prompt_parser import is_break, parse_prompt_attention

CHUNK_TOKENS = 75  # text tokens per chunk; BOS and EOS make it the 77 CLIP sees
# When a chunk fills up and a comma lies within this many tokens of its end, the
# words after that comma move to the next chunk instead of being split (A1111).
COMMA_BACKTRACK = 20
# Bounds the work one request can cause: 32 chunks is 2400 tokens.
MAX_CHUNKS = 32
MAX_PROMPT_CHARS = 50_000
COMMA_TOKEN = ",</w>"


@dataclass(frozen=True)
class PromptChunk:
    """77 token ids (BOS, 75 text-or-pad, EOS) and the weight of each position."""

    token_ids: tuple[int, ...]
    weights: tuple[float, ...]

    @property
    def is_weighted(self) -> bool:
        return any(w != 1.0 for w in self.weights)


def chunk_prompt(tokenizer: CLIPTokenizer, prompt: str) -> list[PromptChunk]:
    """Split one prompt into A1111-style chunks; an empty prompt gives one chunk."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequestError(
            f"The prompt is too long: {len(prompt)} characters (at most {MAX_PROMPT_CHARS})."
        )
    pieces = parse_prompt_attention(prompt)
    texts = [text for text, _ in pieces]
    token_lists = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)[
        "input_ids"
    ]
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    comma = tokenizer.convert_tokens_to_ids(COMMA_TOKEN)

    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close_chunk() -> None:
        nonlocal ids, weights, last_comma
        fill = CHUNK_TOKENS - len(ids)
        chunks.append(
            PromptChunk(
                token_ids=(bos, *ids, *([pad] * fill), eos),
                weights=(1.0, *weights, *([1.0] * fill), 1.0),
            )
        )
        if len(chunks) > MAX_CHUNKS:
            raise InvalidRequestError(
                f"The prompt is too long: more than {MAX_CHUNKS * CHUNK_TOKENS} tokens."
            )
        ids, weights, last_comma = [], [], -1

    for piece, tokens in zip(pieces, token_lists, strict=True):
        if is_break(piece):
            close_chunk()
            continue
        weight = piece[1]
        for token in tokens:
            if token == comma:
                last_comma = len(ids)
            elif (
                len(ids) == CHUNK_TOKENS
                and last_comma != -1
                and len(ids) - last_comma <= COMMA_BACKTRACK
            ):
                keep = last_comma + 1
                moved_ids, moved_weights = ids[keep:], weights[keep:]
                ids, weights = ids[:keep], weights[:keep]
                close_chunk()
                ids, weights = moved_ids, moved_weights
            if len(ids) == CHUNK_TOKENS:
                close_chunk()
            ids.append(token)
            weights.append(weight)

    if ids or not chunks:
        close_chunk()
    return chunks


def empty_chunk(tokenizer: CLIPTokenizer) -> PromptChunk:
    """The chunk of the empty prompt; shorter prompts are padded with it."""
    return chunk_prompt(tokenizer, "")[0]


class TextConditioner:
    """Turns prompt text into the UNet's cross-attention context.

    Runs the text model on its own device and dtype; results come back there.
    """

    def __init__(self, tokenizer: CLIPTokenizer, text_model: CLIPTextModel) -> None:
        self.tokenizer = tokenizer
        self.text_model = text_model

    @property
    def num_layers(self) -> int:
        return int(self.text_model.config.num_hidden_layers)

    def chunk(self, prompt: str) -> list[PromptChunk]:
        return chunk_prompt(self.tokenizer, prompt)

    def encode(self, prompts: str | Sequence[str], clip_skip: int = 1) -> torch.Tensor:
        """(B, 77 * k, hidden): k is the largest chunk count; shorter prompts get empty chunks."""
        return self._encode_chunks([self.chunk(p) for p in _as_list(prompts)], clip_skip)

    def encode_pair(
        self,
        prompts: str | Sequence[str],
        negative_prompts: str | Sequence[str],
        clip_skip: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond) with the same token length, so CFG can batch them together.

        A single negative prompt is used for every positive one; "" is the
        encoding of the empty prompt. Clip skip applies to both, as in A1111.
        """
        positive = _as_list(prompts)
        negative = _as_list(negative_prompts)
        if len(negative) == 1 and len(positive) > 1:
            negative = negative * len(positive)
        if len(negative) != len(positive):
            raise InvalidRequestError(
                f"Got {len(negative)} negative prompts for {len(positive)} prompts."
            )
        chunked = [self.chunk(p) for p in (*positive, *negative)]
        both = self._encode_chunks(chunked, clip_skip)
        return both[: len(positive)], both[len(positive) :]

    def _encode_chunks(self, chunked: list[list[PromptChunk]], clip_skip: int) -> torch.Tensor:
        self._check_clip_skip(clip_skip)
        count = max(len(chunks) for chunks in chunked)
        blank = empty_chunk(self.tokenizer)
        rows = [c for chunks in chunked for c in (*chunks, *[blank] * (count - len(chunks)))]
        device = self.text_model.device
        ids = torch.tensor([r.token_ids for r in rows], dtype=torch.long, device=device)
        with torch.inference_mode():
            hidden = self._hidden_states(ids, clip_skip)
            if any(r.is_weighted for r in rows):
                weights = torch.tensor([r.weights for r in rows], device=device)
                hidden = _apply_weights(hidden, weights)
        batch, width = len(chunked), hidden.shape[-1]
        return hidden.reshape(batch, count * hidden.shape[1], width)

    def _hidden_states(self, ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
        if clip_skip == 1:
            return self.text_model(input_ids=ids).last_hidden_state
        output = self.text_model(input_ids=ids, output_hidden_states=True)
        # hidden_states[-1] is the last layer before the final norm, so -2 is
        # the penultimate layer; the final norm applies either way (A1111).
        return text_transformer(self.text_model).final_layer_norm(output.hidden_states[-clip_skip])

    def _check_clip_skip(self, clip_skip: int) -> None:
        if isinstance(clip_skip, bool) or not isinstance(clip_skip, int):
            raise InvalidRequestError(f"Clip skip must be a whole number (got {clip_skip!r}).")
        if not 1 <= clip_skip <= self.num_layers:
            raise InvalidRequestError(
                f"Clip skip must be between 1 and {self.num_layers} (got {clip_skip})."
            )


def _apply_weights(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scale each token's vector by its weight, then restore each chunk's mean.

    Restoring the mean (A1111) keeps the overall magnitude the UNet was trained on,
    so emphasis changes direction more than loudness. Done per chunk of each prompt,
    so a prompt encodes the same whatever it is batched with.
    """
    values = hidden.float()
    original = values.mean(dim=(1, 2), keepdim=True)
    scaled = values * weights[:, :, None]
    new = scaled.mean(dim=(1, 2), keepdim=True)
    ratio = torch.where(new != 0, original / new, torch.ones_like(new))
    restored = (scaled * ratio).to(hidden.dtype)
    weighted_rows = (weights != 1.0).any(dim=1)[:, None, None]
    return torch.where(weighted_rows, restored, hidden)


def _as_list(prompts: str | Sequence[str]) -> list[str]:
    items = [prompts] if isinstance(prompts, str) else list(prompts)
    if not items:
        raise InvalidRequestError("No prompt to encode.")
    if not all(isinstance(p, str) for p in items):
        raise InvalidRequestError("Prompts must be text.")
    return items
