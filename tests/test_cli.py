"""`sd-desktop generate`: files written, infotext, progress, and one-line errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factories import build_tiny_sd
from sd_desktop.__main__ import main
from sd_desktop.infotext import parse_infotext, read_infotext


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "small")


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["generate", *args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_txt2img_writes_exactly_path_with_infotext(tiny, tmp_path, capsys):
    out = tmp_path / "cat.png"
    code, stdout, stderr = _run(
        capsys,
        "--model",
        str(tiny.single_file),
        "--prompt",
        "a photo of a cat",
        "--negative-prompt",
        "ugly",
        "--sampler",
        "euler_a",
        "--steps",
        "3",
        "--seed",
        "123",
        "--width",
        "64",
        "--height",
        "48",
        "--device",
        "cpu",
        "--dtype",
        "fp32",
        "--output",
        str(out),
    )
    assert code == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.png"]
    assert "step 1/3" in stderr and "step 3/3" in stderr and "s/it" in stderr
    with Image.open(out) as img:
        assert img.size == (64, 48)
    text = read_infotext(out)
    lines = text.splitlines()
    assert lines[0] == "a photo of a cat"
    assert lines[1] == "Negative prompt: ugly"
    sha = hashlib.sha256(tiny.single_file.read_bytes()).hexdigest()
    assert lines[2] == (
        "Steps: 3, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 64x48, "
        f"Model hash: {sha[:10]}, Model: {tiny.single_file.stem}"
    )


def test_random_seed_is_recorded_and_reproduces(tiny, tmp_path, capsys):
    first = tmp_path / "a.png"
    code, _, _ = _run(
        capsys,
        "--model",
        str(tiny.folder),
        "--prompt",
        "x",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--dtype",
        "fp32",
        "--output",
        str(first),
    )
    assert code == 0
    params = parse_infotext(read_infotext(first))
    assert params.seed >= 0
    second = tmp_path / "b.png"
    code, _, _ = _run(
        capsys,
        "--model",
        str(tiny.folder),
        "--prompt",
        "x",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--dtype",
        "fp32",
        "--seed",
        str(params.seed),
        "--output",
        str(second),
    )
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))


def test_batch_img2img_and_clip_skip(tiny, tmp_path, capsys):
    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(init)
    out = tmp_path / "out.png"
    code, stdout, stderr = _run(
        capsys,
        "--model",
        str(tiny.single_file),
        "--prompt",
        "a (red:1.3) car",
        "--steps",
        "4",
        "--init-image",
        str(init),
        "--strength",
        "0.5",
        "--batch-size",
        "2",
        "--clip-skip",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--seed",
        "5",
        "--dtype",
        "fp32",
        "--output",
        str(out),
    )
    assert code == 0, stderr
    written = sorted(p.name for p in tmp_path.glob("out*.png"))
    assert written == ["out-1.png", "out-2.png"]
    text = read_infotext(tmp_path / "out-1.png")
    assert "Denoising strength: 0.5" in text and "Clip skip: 2" in text
    assert "step 2/2" in stderr  # 4 steps at strength 0.5 run 2


def _one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code != 0
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--width", "65"], ("multiple of 8",)),
        (["--steps", "0"], ("Steps",)),
        (["--mask", "nothing.png"], ("does not exist",)),
        (["--clip-skip", "99"], ("Clip skip",)),
        (["--sampler", "nope"], ("nope",)),
    ],
)
def test_bad_requests_give_one_line(tiny, tmp_path, capsys, extra, needles):
    code, _, stderr = _run(
        capsys,
        "--model",
        str(tiny.single_file),
        "--prompt",
        "x",
        "--height",
        "64",
        *(["--width", "64"] if "--width" not in extra else []),
        *extra,
        "--output",
        str(tmp_path / "o.png"),
    )
    _one_line_error(code, stderr, *needles)
    assert not (tmp_path / "o.png").exists()


def test_mask_needs_init_image(tiny, tmp_path, capsys):
    mask = tmp_path / "m.png"
    Image.new("L", (64, 64), 255).save(mask)
    code, _, stderr = _run(
        capsys,
        "--model",
        str(tiny.single_file),
        "--prompt",
        "x",
        "--mask",
        str(mask),
        "--width",
        "64",
        "--height",
        "64",
        "--output",
        str(tmp_path / "o.png"),
    )
    _one_line_error(code, stderr, "--init-image")


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty"), (os.urandom(4096), ""), (b'{"not": "weights"}', "")],
)
def test_broken_model_files(tmp_path, capsys, content, needle):
    model = tmp_path / "broken.safetensors"
    model.write_bytes(content)
    code, _, stderr = _run(
        capsys,
        "--model",
        str(model),
        "--prompt",
        "x",
        "--width",
        "64",
        "--height",
        "64",
        "--output",
        str(tmp_path / "o.png"),
    )
    _one_line_error(code, stderr, needle)


def test_python_m_entry_point_reports_without_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sd_desktop",
            "generate",
            "--model",
            str(tmp_path / "none.safetensors"),
            "--prompt",
            "x",
            "--output",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    _one_line_error(proc.returncode, proc.stderr, "none.safetensors")
