"""Generation parameters as A1111 "infotext", the de-facto format other SD tools read.

Images we save carry this text in the PNG `parameters` chunk so that A1111, ComfyUI
importers, Civitai and our own gallery can all recover how an image was made. Parsing is
lenient about what it does not know (unknown keys are kept verbatim, in order) and strict
about the keys it types, so a bad value gives one clear message instead of a wrong seed.

Pure stdlib plus Pillow for the PNG helpers; nothing here knows about the engine.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

PNG_KEY = "parameters"
NEGATIVE_PREFIX = "Negative prompt:"

# Engine sampler id -> the name A1111 writes. Display only; the engine owns the samplers.
SAMPLER_DISPLAY_NAMES: dict[str, str] = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "heun": "Heun",
    "lms": "LMS",
    "ddim": "DDIM",
    "pndm": "PLMS",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
}
_SAMPLER_IDS = {name.lower(): sid for sid, name in SAMPLER_DISPLAY_NAMES.items()}

# A text chunk bigger than this is not something a person typed; refuse it before parsing.
MAX_INFOTEXT_CHARS = 256 * 1024

# Typed keys in the order A1111 writes them; everything else lands in `extra`.
_KNOWN_KEYS = (
    "Steps",
    "Sampler",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "Denoising strength",
    "Clip skip",
    "Mask blur",
)
# A parameter line has at least this many `key: value` pairs; fewer means it is prompt text.
_MIN_PARAM_PAIRS = 3
# Decoding a foreign PNG just to find late text chunks is allowed up to this size.
_MAX_DECODE_PIXELS = 64 * 1024 * 1024
_KEY_RE = re.compile(r"\s*([A-Za-z][\w \-/().]*?)\s*:\s*")


class InfotextError(ValueError):
    """Infotext whose typed values cannot be read; str() is one line for the user."""


def sampler_display_name(sampler_id: str) -> str:
    """The A1111 name for an engine sampler id (unknown ids pass through unchanged)."""
    return SAMPLER_DISPLAY_NAMES.get(sampler_id, sampler_id)


def sampler_id(display_name: str, schedule_type: str | None = None) -> str | None:
    """The engine sampler id for an A1111 sampler name, or None when we have no match.

    Newer A1111 versions split "DPM++ 2M Karras" into `Sampler: DPM++ 2M` plus
    `Schedule type: Karras`, so both spellings map to the same id.
    """
    name = display_name.strip()
    if schedule_type and schedule_type.strip().lower() not in ("", "automatic"):
        combined = f"{name} {schedule_type.strip()}".lower()
        if combined in _SAMPLER_IDS:
            return _SAMPLER_IDS[combined]
    return _SAMPLER_IDS.get(name.lower())


@dataclass(frozen=True)
class GenerationParams:
    """Everything the infotext records about one image.

    `sampler` holds the A1111 display name ("DPM++ 2M Karras"), because that is what
    foreign files contain; `sampler_id` maps it back to the engine when it can.
    Optional fields are None when the image was not made in that mode.
    """

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    sampler: str = "DPM++ 2M Karras"
    cfg_scale: float = 7.0
    seed: int = -1
    width: int = 512
    height: int = 512
    model_hash: str = ""
    model: str = ""
    denoising_strength: float | None = None
    clip_skip: int = 1
    mask_blur: int | None = None
    # Keys we do not type (Lora hashes, Schedule type, Version, ...), verbatim and in order.
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def mode(self) -> str:
        """ "txt2img", "img2img" or "inpaint", inferred the way A1111 records it."""
        if self.mask_blur is not None:
            return "inpaint"
        return "img2img" if self.denoising_strength is not None else "txt2img"

    @property
    def sampler_id(self) -> str | None:
        return sampler_id(self.sampler, self.extra.get("Schedule type"))

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def with_seed(self, seed: int) -> GenerationParams:
        return replace(self, seed=seed)

    def to_infotext(self) -> str:
        return format_infotext(self)

    @classmethod
    def from_infotext(cls, text: str) -> GenerationParams:
        return parse_infotext(text)

    @classmethod
    def from_request(
        cls, request: Any, *, seed: int | None = None, model: str = "", model_hash: str = ""
    ) -> GenerationParams:
        """Record a finished job. `request` is duck-typed (engine GenerationRequest) so this
        module never imports the engine; pass the seed actually used when it was random."""
        mode = getattr(getattr(request, "mode", None), "value", "txt2img")
        clip_skip = int(getattr(request, "clip_skip", 1) or 1)
        return cls(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=int(request.steps),
            sampler=sampler_display_name(request.sampler),
            cfg_scale=float(request.cfg_scale),
            seed=int(request.seed if seed is None else seed),
            width=int(request.width),
            height=int(request.height),
            model_hash=model_hash,
            model=model,
            denoising_strength=float(request.strength) if mode != "txt2img" else None,
            clip_skip=clip_skip,
            mask_blur=int(request.mask_blur) if mode == "inpaint" else None,
        )

    def to_request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the engine's GenerationRequest ("reuse parameters").

        The sampler is left out when we do not know it, so the caller keeps its own choice.
        """
        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "clip_skip": self.clip_skip,
        }
        sid = self.sampler_id
        if sid is not None:
            kwargs["sampler"] = sid
        if self.denoising_strength is not None:
            kwargs["strength"] = self.denoising_strength
        if self.mask_blur is not None:
            kwargs["mask_blur"] = self.mask_blur
        return kwargs


# ----------------------------------------------------------------------------- formatting


def _format_number(value: float) -> str:
    """7.0 -> "7", 7.5 -> "7.5": A1111 writes the shortest form a person would."""
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(float(value))


def _quote(value: str) -> str:
    """Quote a value only when it would break the comma-separated line (A1111's rule)."""
    if any(ch in value for ch in ',:\n"') or value != value.strip():
        return json.dumps(value, ensure_ascii=False)
    return value


def format_infotext(params: GenerationParams) -> str:
    """The exact text A1111 would store for these parameters."""
    pairs: list[tuple[str, str]] = [
        ("Steps", str(params.steps)),
        ("Sampler", params.sampler),
        ("CFG scale", _format_number(params.cfg_scale)),
        ("Seed", str(params.seed)),
        ("Size", params.size),
    ]
    if params.model_hash:
        pairs.append(("Model hash", params.model_hash))
    if params.model:
        pairs.append(("Model", params.model))
    if params.denoising_strength is not None:
        pairs.append(("Denoising strength", _format_number(params.denoising_strength)))
    if params.clip_skip != 1:
        pairs.append(("Clip skip", str(params.clip_skip)))
    if params.mask_blur is not None:
        pairs.append(("Mask blur", str(params.mask_blur)))
    pairs.extend((k, v) for k, v in params.extra.items() if k not in _KNOWN_KEYS)

    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"{NEGATIVE_PREFIX} {params.negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in pairs))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- parsing


def _read_quoted(line: str, start: int) -> tuple[str, int] | None:
    """A JSON string starting at `start`; returns (value, index after it) or None."""
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == '"':
            try:
                return json.loads(line[start : i + 1]), i + 1
            except ValueError:
                return None
        i += 1
    return None


def split_parameter_line(line: str) -> list[tuple[str, str]]:
    """`key: value, key: "quoted, value", ...` -> ordered pairs (values unquoted).

    A quoted value may hold commas and colons; an unquoted one runs to the next comma.
    Text that does not look like `key:` is skipped, as A1111 does.
    """
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        match = _KEY_RE.match(line, pos)
        if match is None:
            comma = line.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        key = match.group(1).strip()
        pos = match.end()
        if pos < len(line) and line[pos] == '"':
            quoted = _read_quoted(line, pos)
            if quoted is not None:
                value, pos = quoted
                comma = line.find(",", pos)
                pos = len(line) if comma < 0 else comma + 1
                pairs.append((key, value))
                continue
        comma = line.find(",", pos)
        end = len(line) if comma < 0 else comma
        pairs.append((key, line[pos:end].strip()))
        pos = end + 1
    return pairs


def _typed(key: str, raw: str, convert: type) -> Any:
    try:
        value = convert(raw)
    except ValueError:
        raise InfotextError(f"Infotext has an invalid {key}: {raw!r}.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InfotextError(f"Infotext has an invalid {key}: {raw!r}.")
    return value


def _parse_size(raw: str) -> tuple[int, int]:
    parts = raw.lower().split("x")
    if len(parts) != 2:
        raise InfotextError(f"Infotext has an invalid Size: {raw!r} (expected WxH).")
    width = _typed("Size", parts[0].strip(), int)
    height = _typed("Size", parts[1].strip(), int)
    if width <= 0 or height <= 0:
        raise InfotextError(f"Infotext has an invalid Size: {raw!r}.")
    return width, height


def parse_infotext(text: str) -> GenerationParams:
    """Read A1111 infotext: prompt lines, optional `Negative prompt:` lines, parameter line.

    Raises InfotextError for a typed value that cannot be read (e.g. `Steps: many`).
    """
    if len(text) > MAX_INFOTEXT_CHARS:
        raise InfotextError("Infotext is too long to be real generation parameters.")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    pairs = split_parameter_line(lines[-1]) if lines else []
    if len(pairs) >= _MIN_PARAM_PAIRS:
        lines.pop()
    else:
        pairs = []

    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if target is prompt_lines and line.startswith(NEGATIVE_PREFIX):
            target = negative_lines
            line = line[len(NEGATIVE_PREFIX) :].lstrip(" ")
        target.append(line)

    values: dict[str, Any] = {
        "prompt": "\n".join(prompt_lines).strip(),
        "negative_prompt": "\n".join(negative_lines).strip(),
    }
    extra: dict[str, str] = {}
    for key, raw in pairs:
        if key == "Steps":
            values["steps"] = _typed(key, raw, int)
        elif key == "Sampler":
            values["sampler"] = raw
        elif key == "CFG scale":
            values["cfg_scale"] = _typed(key, raw, float)
        elif key == "Seed":
            values["seed"] = _typed(key, raw, int)
        elif key == "Size":
            values["width"], values["height"] = _parse_size(raw)
        elif key == "Model hash":
            values["model_hash"] = raw
        elif key == "Model":
            values["model"] = raw
        elif key == "Denoising strength":
            values["denoising_strength"] = _typed(key, raw, float)
        elif key == "Clip skip":
            values["clip_skip"] = _typed(key, raw, int)
        elif key == "Mask blur":
            values["mask_blur"] = _typed(key, raw, int)
        else:
            extra[key] = raw
    return GenerationParams(**values, extra=extra)


# ----------------------------------------------------------------------------- PNG files


def png_info(params: GenerationParams, **more: str) -> Any:
    """A PngInfo carrying the infotext (and any further text chunks, e.g. Creation Time)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, params.to_infotext())
    for key, value in more.items():
        info.add_text(key.replace("_", " "), value)
    return info


def write_png(image: Any, target: str | Path | BinaryIO, params: GenerationParams) -> None:
    """Save `image` (PIL) as PNG with the infotext in the `parameters` chunk."""
    image.save(target, format="PNG", pnginfo=png_info(params))


def read_infotext(source: str | Path | BinaryIO) -> str | None:
    """The raw `parameters` text of a PNG, or None when it has none.

    Only the chunks before the pixel data are read (where Pillow and A1111 put them),
    so this is cheap even for large images and never decodes pixels.
    """
    from PIL import Image

    with Image.open(source) as image:
        text = image.info.get(PNG_KEY)
        if text is None and image.format == "PNG" and _small_enough(image.size):
            # Some tools write text after the pixels; Pillow must decode to reach it.
            text = getattr(image, "text", {}).get(PNG_KEY)
    return text if isinstance(text, str) else None


def _small_enough(size: tuple[int, int]) -> bool:
    return size[0] * size[1] <= _MAX_DECODE_PIXELS


def read_png_params(source: str | Path | BinaryIO) -> GenerationParams | None:
    """Parameters stored in a PNG, or None when it has no infotext.

    Raises InfotextError when the text is there but unreadable.
    """
    text = read_infotext(source)
    return None if text is None else parse_infotext(text)
