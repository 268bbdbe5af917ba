"""What the app remembers between runs, in one JSON file in the user's config folder.

The file is written atomically (temp file + rename), so a crash mid-write leaves the
previous settings intact. Reading is forgiving: a damaged file or a value of the wrong
type falls back to the default for that value instead of keeping the app from starting.

Every folder can be redirected with an environment variable (SD_DESKTOP_CONFIG_DIR,
SD_DESKTOP_DATA_DIR, SD_DESKTOP_CACHE_DIR), which tests use to stay out of the real
user's folders; MainWindow also takes the paths as an argument.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from sd_desktop.atomic_files import write_text_atomic

log = logging.getLogger(__name__)

APP_NAME = "sd-desktop"
CONFIG_DIR_ENV = "SD_DESKTOP_CONFIG_DIR"
DATA_DIR_ENV = "SD_DESKTOP_DATA_DIR"
CACHE_DIR_ENV = "SD_DESKTOP_CACHE_DIR"
GALLERY_DIR_ENV = "SD_DESKTOP_GALLERY_DIR"
SETTINGS_FILE_NAME = "settings.json"
SETTINGS_VERSION = 1
# Lists the user grows by hand; capped so a settings file never balloons.
MAX_REMEMBERED = 50
# A settings file bigger than this was not written by us.
MAX_SETTINGS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class AppPaths:
    """Where the app keeps its files."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    gallery_dir: Path | None = None  # None: the gallery's own default (Pictures/sd-desktop)
    hf_cache: Path | None = None  # None: wherever huggingface_hub keeps it (HF_HOME, ...)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AppPaths:
        env = os.environ if env is None else env

        def pick(var: str, default: str) -> Path:
            value = env.get(var, "").strip()
            return Path(value).expanduser() if value else Path(default)

        gallery = env.get(GALLERY_DIR_ENV, "").strip()
        return cls(
            config_dir=pick(CONFIG_DIR_ENV, platformdirs.user_config_dir(APP_NAME)),
            data_dir=pick(DATA_DIR_ENV, platformdirs.user_data_dir(APP_NAME)),
            cache_dir=pick(CACHE_DIR_ENV, platformdirs.user_cache_dir(APP_NAME)),
            gallery_dir=Path(gallery).expanduser() if gallery else None,
        )

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """Everything below one folder (tests, portable installs); not even the Hugging
        Face cache is read from outside it."""
        return cls(
            root / "config", root / "data", root / "cache", root / "gallery", root / "hf-cache"
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / SETTINGS_FILE_NAME

    @property
    def models_dir(self) -> Path:
        """The folder scanned for models without the user adding it."""
        return self.data_dir / "models"

    @property
    def thumbnails_dir(self) -> Path:
        return self.cache_dir / "thumbnails"

    @property
    def model_hashes_file(self) -> Path:
        """Model sha256 cache, so a 4 GB file is hashed once, not once per session."""
        return self.cache_dir / "model-hashes.json"


@dataclass
class Settings:
    """Everything remembered. Paths are stored as strings ("" = not set)."""

    last_params: dict[str, Any] = field(default_factory=dict)  # GenerationPanel.values()
    known_models: list[str] = field(default_factory=list)  # files opened by hand
    model_folders: list[str] = field(default_factory=list)  # folders added by the user
    last_model: str = ""
    output_folder: str = ""  # "" = the default gallery folder
    preview_mode: str = "fast"  # PreviewMode value
    preview_every: int = 5  # full previews: VAE decode every N steps
    device: str = "auto"
    use_hf_cache: bool = True  # also list models from the Hugging Face cache
    window_geometry: str = ""  # QByteArray as base64
    window_state: str = ""
    splitter_state: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Take each known key whose value has the right type; ignore the rest."""
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(defaults, f.name)
            if isinstance(default, list):
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    values[f.name] = _dedupe(value)[:MAX_REMEMBERED]
            elif isinstance(default, dict):
                if isinstance(value, dict):
                    values[f.name] = dict(value)
            elif isinstance(default, bool):
                if isinstance(value, bool):
                    values[f.name] = value
            elif isinstance(default, int):
                if isinstance(value, int) and not isinstance(value, bool):
                    values[f.name] = value
            elif isinstance(value, type(default)):
                values[f.name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {"version": SETTINGS_VERSION, **asdict(self)}

    def remember_model(self, path: str | Path) -> None:
        """A model file opened by hand stays in the list for next time."""
        self.known_models = _dedupe([str(path), *self.known_models])[:MAX_REMEMBERED]

    def add_model_folder(self, folder: str | Path) -> bool:
        text = str(folder)
        if text in self.model_folders:
            return False
        self.model_folders = [*self.model_folders, text][-MAX_REMEMBERED:]
        return True


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class SettingsStore:
    """Loads and saves Settings at `path`. `load_problem` says why a file was ignored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.load_problem: str | None = None

    def load(self) -> Settings:
        self.load_problem = None
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_SETTINGS_BYTES + 1)
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            return self._unusable(f"cannot read it ({exc.strerror or exc})")
        if len(raw) > MAX_SETTINGS_BYTES:
            return self._unusable("it is implausibly large")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return self._unusable(f"it is not valid JSON ({exc})", keep_copy=True)
        if not isinstance(data, dict):
            return self._unusable("it does not hold settings", keep_copy=True)
        return Settings.from_dict(data)

    def _unusable(self, why: str, keep_copy: bool = False) -> Settings:
        self.load_problem = f"Settings file {self.path} was ignored: {why}."
        log.warning(self.load_problem)
        if keep_copy:
            # Keep the damaged file for the user; the next save replaces the original.
            try:
                os.replace(self.path, self.path.with_suffix(".json.bad"))
            except OSError:
                pass
        return Settings()

    def save(self, settings: Settings) -> None:
        """Atomic: readers see the old file or the new one, never half of one."""
        text = json.dumps(settings.to_dict(), indent=2, ensure_ascii=False, sort_keys=True)
        write_text_atomic(self.path, text + "\n")
