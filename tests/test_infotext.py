"""A1111 infotext: formatting, parsing real-world text, and the PNG round trip."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sd_desktop.infotext import (
    GenerationParams,
    InfotextError,
    parse_infotext,
    read_infotext,
    read_png_params,
    sampler_display_name,
    sampler_id,
    split_parameter_line,
    write_png,
)

REAL_A1111 = (
    "masterpiece, best quality, 1girl, (blue sky:1.2),\n"
    "<lora:add_detail:0.5>, city street\n"
    "Negative prompt: lowres, bad anatomy, easynegative\n"
    "worst quality\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3172367219, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    'Denoising strength: 0.45, Clip skip: 2, Lora hashes: "add_detail: 7c6bad76eb54, x: 1", '
    'TI hashes: "easynegative: c74b4e810b03", Hires upscaler: Latent, Version: v1.7.0'
)


def test_format_txt2img_matches_a1111_layout() -> None:
    params = GenerationParams(
        prompt="a cat",
        negative_prompt="blurry",
        steps=20,
        sampler="DPM++ 2M Karras",
        cfg_scale=7.0,
        seed=123,
        width=512,
        height=512,
        model_hash="0123456789",
        model="name",
    )
    assert params.to_infotext() == (
        "a cat\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 123, Size: 512x512, "
        "Model hash: 0123456789, Model: name"
    )


def test_format_omits_empty_negative_and_default_clip_skip() -> None:
    text = GenerationParams(prompt="x", seed=1, clip_skip=1).to_infotext()
    assert "Negative prompt" not in text
    assert "Clip skip" not in text
    assert text.splitlines()[0] == "x"
    assert len(text.splitlines()) == 2


def test_format_img2img_and_inpaint_fields() -> None:
    img2img = GenerationParams(prompt="p", denoising_strength=0.75, clip_skip=2)
    assert "Denoising strength: 0.75, Clip skip: 2" in img2img.to_infotext()
    assert img2img.mode == "img2img"
    inpaint = GenerationParams(prompt="p", denoising_strength=0.6, mask_blur=4)
    assert inpaint.to_infotext().endswith("Denoising strength: 0.6, Mask blur: 4")
    assert inpaint.mode == "inpaint"
    assert GenerationParams(prompt="p").mode == "txt2img"


def test_parse_real_a1111_text() -> None:
    params = parse_infotext(REAL_A1111)
    assert params.prompt == (
        "masterpiece, best quality, 1girl, (blue sky:1.2),\n<lora:add_detail:0.5>, city street"
    )
    assert params.negative_prompt == "lowres, bad anatomy, easynegative\nworst quality"
    assert params.steps == 30
    assert params.sampler == "DPM++ 2M"
    assert params.sampler_id == "dpmpp_2m_karras"
    assert params.cfg_scale == 6.5
    assert params.seed == 3172367219
    assert (params.width, params.height) == (512, 768)
    assert params.model_hash == "6ce0161689"
    assert params.model == "v1-5-pruned-emaonly"
    assert params.denoising_strength == 0.45
    assert params.clip_skip == 2
    assert params.mask_blur is None
    assert params.extra == {
        "Schedule type": "Karras",
        "Lora hashes": "add_detail: 7c6bad76eb54, x: 1",
        "TI hashes": "easynegative: c74b4e810b03",
        "Hires upscaler": "Latent",
        "Version": "v1.7.0",
    }


def test_real_text_survives_format_parse_round_trip() -> None:
    params = parse_infotext(REAL_A1111)
    again = parse_infotext(params.to_infotext())
    assert again == params
    # Quoted values stay quoted so the line still splits correctly.
    assert 'Lora hashes: "add_detail: 7c6bad76eb54, x: 1"' in params.to_infotext()


@pytest.mark.parametrize(
    "params",
    [
        GenerationParams(),
        GenerationParams(prompt="line one\nline two", negative_prompt="neg\nmore neg"),
        GenerationParams(prompt="", negative_prompt="only negative"),
        GenerationParams(prompt="a, b: c", model="my, model", sampler="Euler a", cfg_scale=7.25),
        GenerationParams(prompt="ünïcode ✓", seed=2**32 - 1, width=768, height=448),
        GenerationParams(prompt="q", denoising_strength=1.0, mask_blur=0, clip_skip=3),
        GenerationParams(prompt="q", extra={"Note": 'has "quotes", commas', "Empty": ""}),
    ],
)
def test_round_trip(params: GenerationParams) -> None:
    assert parse_infotext(params.to_infotext()) == params


def test_prompt_without_parameter_line_is_all_prompt() -> None:
    params = parse_infotext("just a prompt, with: one colon")
    assert params.prompt == "just a prompt, with: one colon"
    assert params.extra == {}


def test_split_parameter_line_handles_escapes_and_junk() -> None:
    pairs = split_parameter_line(r'A: 1, B: "x \"y\", z", junk, C: 3')
    assert pairs == [("A", "1"), ("B", 'x "y", z'), ("C", "3")]


def test_bad_typed_value_is_a_one_line_error() -> None:
    with pytest.raises(InfotextError, match="invalid Steps") as err:
        parse_infotext("p\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1")
    assert "\n" not in str(err.value)
    with pytest.raises(InfotextError, match="Size"):
        parse_infotext("p\nSteps: 2, Sampler: Euler, Size: 512by512")
    with pytest.raises(InfotextError, match="CFG"):
        parse_infotext("p\nSteps: 2, Sampler: Euler, CFG scale: nan")


def test_oversized_text_is_refused() -> None:
    with pytest.raises(InfotextError, match="too long"):
        parse_infotext("x" * 300_000)


def test_sampler_table() -> None:
    assert sampler_display_name("euler_a") == "Euler a"
    assert sampler_display_name("pndm") == "PLMS"
    assert sampler_display_name("unknown") == "unknown"
    assert sampler_id("DPM++ 2M Karras") == "dpmpp_2m_karras"
    assert sampler_id("DPM++ 2M", "Karras") == "dpmpp_2m_karras"
    assert sampler_id("DPM++ 2M", "Automatic") == "dpmpp_2m"
    assert sampler_id("UniPC") is None


def test_from_request_and_back_to_request_kwargs() -> None:
    request = SimpleNamespace(
        prompt="p",
        negative_prompt="n",
        sampler="euler_a",
        steps=12,
        cfg_scale=5.5,
        seed=-1,
        width=640,
        height=384,
        clip_skip=2,
        strength=0.6,
        mask_blur=4,
        mode=SimpleNamespace(value="inpaint"),
    )
    params = GenerationParams.from_request(request, seed=99, model="m", model_hash="abc")
    assert params.sampler == "Euler a"
    assert params.seed == 99
    assert params.mode == "inpaint"
    assert params.to_request_kwargs() == {
        "prompt": "p",
        "negative_prompt": "n",
        "steps": 12,
        "cfg_scale": 5.5,
        "seed": 99,
        "width": 640,
        "height": 384,
        "clip_skip": 2,
        "sampler": "euler_a",
        "strength": 0.6,
        "mask_blur": 4,
    }


def test_png_round_trip() -> None:
    params = parse_infotext(REAL_A1111)
    buffer = io.BytesIO()
    write_png(Image.new("RGB", (8, 8), "red"), buffer, params)
    buffer.seek(0)
    assert read_png_params(buffer) == params
    buffer.seek(0)
    assert read_infotext(buffer) == params.to_infotext()


def test_png_without_infotext_and_text_after_pixels() -> None:
    plain = io.BytesIO()
    Image.new("RGB", (4, 4)).save(plain, format="PNG")
    plain.seek(0)
    assert read_png_params(plain) is None

    # A text chunk written after IDAT (as some tools do) is still found.
    info = PngInfo()
    info.add_text("parameters", "late\nSteps: 5, Sampler: Euler, Seed: 7", zip=True)
    late = io.BytesIO()
    Image.new("RGB", (4, 4)).save(late, format="PNG", pnginfo=info)
    data = late.getvalue()
    ztxt = data.index(b"zTXt") - 4
    length = int.from_bytes(data[ztxt : ztxt + 4], "big")
    chunk = data[ztxt : ztxt + 12 + length]
    without = data.replace(chunk, b"")
    iend = without.index(b"IEND") - 4
    moved = without[:iend] + chunk + without[iend:]
    params = read_png_params(io.BytesIO(moved))
    assert params is not None and params.prompt == "late" and params.seed == 7
