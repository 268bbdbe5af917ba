"""The CLIP tokenizer of Stable Diffusion 1.x, built from files we ship.

Loading from our own resources folder (never a model hub) keeps the app usable
offline and makes token ids independent of what a checkpoint happens to include.
"""

from __future__ import annotations

from functools import cache

from transformers import CLIPTokenizer

from sd_desktop.engine.errors import EngineError
from sd_desktop.resources import resource_path

TOKENIZER_DIR = ("clip_tokenizer",)
CONTEXT_LENGTH = 77
BOS_ID = 49406
EOS_ID = 49407
# openai/clip-vit-large-patch14 pads with the end-of-text token; SD was trained that way.
PAD_ID = EOS_ID
VOCAB_SIZE = 49408


def load_tokenizer() -> CLIPTokenizer:
    """A fresh CLIPTokenizer for openai/clip-vit-large-patch14; callers keep it if they reuse it."""
    folder = resource_path(*TOKENIZER_DIR)
    try:
        tokenizer = CLIPTokenizer.from_pretrained(
            str(folder),
            local_files_only=True,
            model_max_length=CONTEXT_LENGTH,
            pad_token="<|endoftext|>",
        )
    except (OSError, ValueError) as exc:
        raise EngineError(f"The bundled CLIP tokenizer in {folder} is unreadable: {exc}") from exc
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    if len(tokenizer) != VOCAB_SIZE or ids != (BOS_ID, EOS_ID, PAD_ID):
        raise EngineError(f"The bundled CLIP tokenizer in {folder} is not the SD 1.x one.")
    return tokenizer


@cache
def shared_tokenizer() -> CLIPTokenizer:
    """One tokenizer per process: building it holds the GIL for ~50-100 ms, which a UI
    thread feels on every model load. Tokenizing does not change its vocabulary."""
    return load_tokenizer()
