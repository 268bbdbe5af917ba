"""`sd-desktop generate`: the engine from a terminal.

Defaults reproduce diffusers (no mask blur, nothing pasted back); the options
--mask-blur and --keep-unmasked give the app's A1111-like behaviour.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .atomic_files import atomic_output
from .engine.errors import EngineError, InvalidRequestError

MAX_INPUT_PIXELS = 8192 * 8192


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line on stderr, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see sd-desktop generate --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .engine.sampling.samplers import SAMPLERS

    p = _OneLineParser(
        prog="sd-desktop generate",
        description="Generate images with a Stable Diffusion 1.x checkpoint.",
    )
    p.add_argument("--model", required=True, help="a .safetensors checkpoint or diffusers folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--sampler", default="dpmpp_2m_karras", choices=list(SAMPLERS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg-scale", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=-1, help="-1 picks a random seed")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--init-image", type=Path, help="source image for img2img or inpainting")
    p.add_argument("--strength", type=float, default=0.75, help="denoising strength")
    p.add_argument("--mask", type=Path, help="inpainting mask, white = repaint")
    p.add_argument("--mask-blur", type=int, default=0)
    p.add_argument(
        "--keep-unmasked",
        action="store_true",
        help="paste the source's pixels back outside the mask",
    )
    p.add_argument("--clip-skip", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--output", required=True, type=Path, help="PNG path to write")
    return p


def load_input_image(path: Path, what: str) -> Image.Image:
    """Open an untrusted image with a pixel bound, fully decoded, or fail with one line."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_INPUT_PIXELS:
                raise InvalidRequestError(
                    f"The {what} {path} is {img.width}x{img.height}; "
                    "images over 8192x8192 pixels are refused."
                )
            img.load()
            return img.copy()
    except FileNotFoundError:
        raise InvalidRequestError(f"The {what} {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidRequestError(f"The {what} {path} is not a readable image ({exc}).") from None


def output_paths(output: Path, count: int) -> list[Path]:
    """Batch size 1 writes exactly PATH; larger batches add -1, -2, ... before the suffix."""
    if output.suffix.lower() != ".png":
        output = (
            output.with_suffix(output.suffix + ".png")
            if output.suffix
            else output.with_suffix(".png")
        )
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


def save_png(image: Image.Image, path: Path, request, model) -> None:
    """Write the PNG with A1111 infotext via a temporary file, so no half-written file remains."""
    from .infotext import GenerationParams, write_png

    params = GenerationParams.from_request(
        request, seed=request.seed, model=model.name, model_hash=model.short_hash
    )
    with atomic_output(path, suffix=".png") as handle:
        write_png(image, handle, params)


def run_generate(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _generate(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller size or batch, or --dtype bf16", file=sys.stderr)
        return 2


def _generate(args: argparse.Namespace) -> int:
    from .engine.model import load_model
    from .engine.pipeline import generate
    from .engine.request import GenerationRequest

    init_image = load_input_image(args.init_image, "init image") if args.init_image else None
    mask = load_input_image(args.mask, "mask") if args.mask else None
    if mask is not None and init_image is None:
        raise InvalidRequestError("--mask needs --init-image: the image to inpaint.")
    if init_image is not None and mask is not None and mask.size != init_image.size:
        raise InvalidRequestError(
            f"The mask is {mask.width}x{mask.height} but the image is "
            f"{init_image.width}x{init_image.height}; they must be the same size."
        )
    if not args.output.parent.exists():
        raise InvalidRequestError(f"The output folder {args.output.parent} does not exist.")

    request = GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        sampler=args.sampler,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        seed=args.seed,
        width=args.width,
        height=args.height,
        batch_size=args.batch_size,
        clip_skip=args.clip_skip,
        init_image=init_image,
        strength=args.strength,
        mask=mask,
        mask_blur=args.mask_blur,
        keep_unmasked=args.keep_unmasked,
    )
    t0 = time.perf_counter()
    print(f"Loading {args.model} ...", file=sys.stderr)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    print(
        f"Loaded {model.name} ({model.config.family_name}) on {model.device} "
        f"{model.dtype_name} in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )

    def progress(p) -> None:
        per_it = p.elapsed / p.step
        print(f"step {p.step}/{p.total}  {per_it:.2f}s/it", file=sys.stderr, flush=True)

    result = generate(model, request, callback=progress)
    paths = output_paths(args.output, len(result.images))
    for image, path in zip(result.images, paths, strict=True):
        save_png(image, path, result.request, model)
        print(str(path))
    print(f"Seed: {result.seed}", file=sys.stderr)
    return 0
