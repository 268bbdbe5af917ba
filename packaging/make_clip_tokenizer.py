"""Regenerate resources/clip_tokenizer/ from OpenAI's original BPE merge list.

Stable Diffusion 1.x conditions on openai/clip-vit-large-patch14, whose tokenizer is
fully determined by `bpe_simple_vocab_16e6.txt.gz` (shipped in the open_clip_torch
wheel). Deriving the files here, instead of downloading them from a model hub, keeps
the build offline and makes the committed files auditable.

Usage:
    pip download --no-deps open_clip_torch -d /tmp/oc
    python packaging/make_clip_tokenizer.py /tmp/oc/open_clip_torch-*.whl

The argument may also be the .txt.gz itself.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zipfile
from pathlib import Path

BPE_MEMBER_SUFFIX = "bpe_simple_vocab_16e6.txt.gz"
# CLIP uses a 49408-token vocabulary: 512 byte symbols, 48894 merges, 2 special tokens.
VOCAB_SIZE = 49408
MERGE_COUNT = VOCAB_SIZE - 512 - 2
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "resources" / "clip_tokenizer"


def byte_symbols() -> list[str]:
    """The printable stand-in for each byte, in CLIP's vocabulary order.

    Bytes that are already visible keep their own character; the rest (control
    characters, space, a few Latin-1 gaps) are moved to code points from 256 upward
    in byte order. The visible ones come first, which is the order the ids follow.
    """
    visible = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\u00a1"), ord("\u00ac") + 1),
        *range(ord("\u00ae"), ord("\u00ff") + 1),
    ]
    shown = set(visible)
    hidden = [b for b in range(256) if b not in shown]
    return [chr(b) for b in visible] + [chr(256 + i) for i in range(len(hidden))]


def read_bpe_lines(source: Path) -> list[str]:
    """Lines of the merge list from a wheel (zip) or the bare .txt.gz."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            members = [n for n in wheel.namelist() if n.endswith(BPE_MEMBER_SUFFIX)]
            if not members:
                raise SystemExit(f"{source} does not contain {BPE_MEMBER_SUFFIX}")
            raw = gzip.decompress(wheel.read(members[0]))
    else:
        raw = gzip.decompress(source.read_bytes())
    return raw.decode("utf-8").split("\n")


def build(lines: list[str]) -> tuple[dict[str, int], list[str]]:
    """Vocabulary and merge list exactly as openai/clip-vit-large-patch14 ships them."""
    # The first line is a version header, not a merge.
    merges = lines[1 : 1 + MERGE_COUNT]
    if len(merges) != MERGE_COUNT or any(len(m.split(" ")) != 2 for m in merges):
        raise SystemExit("the BPE file does not hold the expected 48894 merges")
    symbols = byte_symbols()
    tokens = symbols + [s + END_OF_WORD for s in symbols]
    tokens += [m.replace(" ", "") for m in merges]
    tokens += [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise SystemExit(f"expected {VOCAB_SIZE} distinct tokens, got {len(vocab)}")
    return vocab, merges


def tokenizer_config() -> dict[str, object]:
    """Settings openai/clip-vit-large-patch14 declares; pad is EOS, context is 77."""
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "add_prefix_space": False,
        "errors": "replace",
    }


def write(out_dir: Path, vocab: dict[str, int], merges: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # ensure_ascii keeps the file byte-identical across platforms and editors.
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=True) + "\n", "utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8", newline="\n"
    )
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(), indent=2) + "\n", "utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="open_clip_torch wheel or the .txt.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    vocab, merges = build(read_bpe_lines(args.source))
    write(args.out, vocab, merges)
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
