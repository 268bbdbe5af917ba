"""The wheel must carry every package and the bundled resources."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed():
    listed = set(_setuptools()["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "sd_desktop").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_resources_ship_inside_the_package():
    cfg = _setuptools()
    assert cfg["package-dir"]["sd_desktop._resources"] == "resources"
    assert (ROOT / "resources" / "clip_tokenizer" / "vocab.json").is_file()
    assert (ROOT / "resources" / "clip_tokenizer" / "merges.txt").is_file()


def test_runtime_dependencies_stay_on_the_design_card():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower().replace("_", "-")
        for d in project["dependencies"]
    }
    allowed = {
        "torch",
        "transformers",
        "safetensors",
        "pillow",
        "platformdirs",
        "pyside6-essentials",
        "numpy",
        "huggingface-hub",
    }
    assert names <= allowed, names - allowed
    assert "diffusers" not in names
