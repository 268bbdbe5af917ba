"""Fetching a catalog model from the Hugging Face Hub, resumable and never half-installed.

huggingface_hub resolves each file (its commit, ETag, size and download URL) and
provides the HTTP session, token and error types. The transfer itself is ours:
huggingface_hub 2.x downloads into a per-process temporary file that it deletes
when the download stops, so a cancelled 4 GB download would start over. Here
the bytes go to `<models>/.downloads/<id>/files/<path>.part`, a later attempt
continues with an HTTP Range request, every file is checked against its
sha256 ETag, and the model appears in the models folder by one rename only
when all of its files are complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

try:  # huggingface_hub 2.x talks HTTP through httpx2, 1.x through httpx: same API
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx  # type: ignore[no-redef]

from sd_desktop.atomic_files import write_text_atomic

from .catalog import CatalogEntry
from .errors import DownloadCancelled, DownloadError, LibraryError, OfflineError
from .hashes import HashCache, hashed_files
from .paths import staging_folder

SHA256_ETAG = re.compile(r"^[0-9a-f]{64}$")
STATE_FILE = "download.json"
PART_SUFFIX = ".part"
DISK_MARGIN = 64 * 1024 * 1024
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class DownloadProgress:
    """A snapshot for a progress bar; bytes count every file of the model together."""

    done_bytes: int
    total_bytes: int
    file_name: str
    file_index: int  # 1-based
    file_count: int
    resumed_bytes: int  # already on disk when this attempt started
    bytes_per_second: float

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


ProgressFn = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path inside the repo
    url: str  # where the bytes are (the Hub, or the CDN it redirects to)
    etag: str
    size: int


@dataclass
class DownloadResult:
    path: Path  # the installed model (file or folder) in the models folder
    sha256: dict[str, str] = field(default_factory=dict)  # repo path -> verified digest
    resumed_bytes: int = 0


def _offline_message(models_folder: Path, detail: str) -> str:
    return (
        f"Cannot reach the Hugging Face Hub ({detail}). To add a model without this "
        f"download, put a .safetensors file (or a diffusers folder) in {models_folder}: "
        "the app finds it there at its next start, or at once with Look again / Rescan."
    )


def _human(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


class ModelDownloader:
    """Downloads catalog entries into one models folder.

    `endpoint` defaults to HF_ENDPOINT (read at call time) or huggingface.co;
    `token` follows huggingface_hub's rules (None: the saved login, if any).
    """

    def __init__(
        self,
        models_folder: Path,
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        hash_cache: HashCache | None = None,
        progress_interval: float = 0.1,
    ) -> None:
        self.models_folder = Path(models_folder)
        self._endpoint = endpoint
        self.token = token
        self.hash_cache = hash_cache
        self.progress_interval = progress_interval

    @property
    def endpoint(self) -> str:
        chosen = self._endpoint or os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT
        return chosen.rstrip("/")

    # -- where things go ------------------------------------------------------------------

    def staging_dir(self, entry: CatalogEntry) -> Path:
        return staging_folder(self.models_folder) / entry.id

    def target_path(self, entry: CatalogEntry) -> Path:
        return self.models_folder / entry.target

    def is_installed(self, entry: CatalogEntry) -> bool:
        return self.target_path(entry).exists()

    def partial_bytes(self, entry: CatalogEntry) -> int:
        """Bytes kept from an earlier, interrupted attempt (0 if none)."""
        files = self.staging_dir(entry) / "files"
        if not files.is_dir():
            return 0
        return sum(p.stat().st_size for p in files.rglob("*") if p.is_file())

    def discard_partial(self, entry: CatalogEntry) -> None:
        shutil.rmtree(self.staging_dir(entry), ignore_errors=True)
        _remove_if_empty(self.staging_dir(entry).parent)

    # -- the download ---------------------------------------------------------------------

    def download(
        self,
        entry: CatalogEntry,
        *,
        progress: ProgressFn | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> DownloadResult:
        """Fetch every file of `entry`, verify it and install it; returns the installed path.

        Raises OfflineError (no connection), DownloadError (refused, corrupt, disk
        full) or DownloadCancelled; in every case the models folder is unchanged and
        the bytes fetched so far stay in the staging folder for the next attempt.
        """
        cancelled = should_cancel or (lambda: False)
        staging = self.staging_dir(entry)
        files_dir = staging / "files"
        try:
            files_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(
                f"Cannot create {files_dir}: {exc.strerror or exc}. Check the models folder."
            ) from exc

        remote = self._resolve(entry)
        state = self._read_state(staging)
        self._drop_stale_parts(files_dir, remote, state)
        self._write_state(staging, remote)

        total = sum(f.size for f in remote)
        on_disk = sum(self._local_size(files_dir, f) for f in remote)
        self._check_space(files_dir, total - on_disk)

        meter = _Meter(total, on_disk, len(remote), progress, self.progress_interval)
        digests: dict[str, str] = {}
        for index, file in enumerate(remote, start=1):
            if cancelled():
                raise DownloadCancelled(self._cancel_message(entry))
            digests[file.name] = self._fetch(entry, file, files_dir, index, meter, cancelled)
        meter.finish()

        path = self._install(entry, files_dir)
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(staging.parent)
        self._remember_hash(entry, path, digests)
        return DownloadResult(path=path, sha256=digests, resumed_bytes=on_disk)

    def _cancel_message(self, entry: CatalogEntry) -> str:
        kept = self.partial_bytes(entry)
        return f"Download stopped; {_human(kept)} kept, so downloading again continues from there."

    def _resolve(self, entry: CatalogEntry) -> list[RemoteFile]:
        """Ask the Hub where each file is, pinning every file to one commit."""
        revision = entry.revision
        found: list[RemoteFile] = []
        for name in entry.all_files:
            optional = name in entry.optional_files
            url = hf_hub_url(entry.repo, name, revision=revision, endpoint=self.endpoint)
            try:
                meta = get_hf_file_metadata(
                    url, token=self.token, timeout=CONNECT_TIMEOUT, endpoint=self.endpoint
                )
            except EntryNotFoundError:
                if optional:
                    continue
                raise DownloadError(
                    f"{entry.repo} has no file {name} any more; the app's model list is out "
                    "of date. Download the model from its page instead: " + entry.page
                ) from None
            except Exception as exc:
                raise self._translate(exc, entry) from exc
            if meta.commit_hash and revision == entry.revision:
                revision = meta.commit_hash  # the other files come from the same commit
            if meta.etag is None or meta.size is None:
                raise DownloadError(f"The Hub sent no size or version for {name}; try again later.")
            found.append(RemoteFile(name, meta.location, meta.etag, int(meta.size)))
        return found

    def _translate(self, exc: Exception, entry: CatalogEntry) -> Exception:
        """huggingface_hub and httpx errors -> one line the user can act on."""
        if isinstance(exc, OfflineModeIsEnabled):
            return OfflineError(_offline_message(self.models_folder, "offline mode is on"))
        if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
            reason = type(exc).__name__ if not str(exc) else str(exc).splitlines()[0]
            return OfflineError(_offline_message(self.models_folder, reason))
        if isinstance(exc, GatedRepoError):
            return DownloadError(
                f"{entry.repo} asks you to accept its licence first: open {entry.page}, accept "
                "it, then log in with `hf auth login` and try again."
            )
        if isinstance(exc, RepositoryNotFoundError | RevisionNotFoundError):
            return DownloadError(
                f"The Hub no longer has {entry.repo} ({entry.revision}); the app's model list "
                "is out of date."
            )
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "?"
            return DownloadError(
                f"The Hub refused the download of {entry.name} (HTTP {status}); try again later."
            )
        if isinstance(exc, OSError):
            return DownloadError(f"Download failed: {exc.strerror or exc}.")
        return exc

    @staticmethod
    def _read_state(staging: Path) -> dict[str, str]:
        try:
            data = json.loads((staging / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        files = data.get("etags") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            return {}
        return {str(k): str(v) for k, v in files.items()}

    @staticmethod
    def _write_state(staging: Path, remote: list[RemoteFile]) -> None:
        payload = {"etags": {f.name: f.etag for f in remote}}
        write_text_atomic(staging / STATE_FILE, json.dumps(payload, indent=1), durable=False)

    @staticmethod
    def _drop_stale_parts(files_dir: Path, remote: list[RemoteFile], old: dict[str, str]) -> None:
        """Bytes of a file that changed on the Hub since the last attempt cannot be resumed."""
        for file in remote:
            if old.get(file.name) != file.etag:
                for stale in (files_dir / file.name, _part(files_dir, file)):
                    stale.unlink(missing_ok=True)

    @staticmethod
    def _local_size(files_dir: Path, file: RemoteFile) -> int:
        done = files_dir / file.name
        if done.is_file():
            return done.stat().st_size
        part = _part(files_dir, file)
        return min(part.stat().st_size, file.size) if part.is_file() else 0

    def _check_space(self, folder: Path, needed: int) -> None:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return
        if needed + DISK_MARGIN > free:
            raise DownloadError(
                f"Not enough disk space: the download needs {_human(needed)} more but only "
                f"{_human(free)} is free on the disk of {self.models_folder}."
            )

    def _headers_for(self, url: str) -> dict[str, str]:
        """Hub requests carry the login; other hosts (the CDN) get no credentials."""
        same_host = urlsplit(url)[:2] == urlsplit(self.endpoint)[:2]
        headers = build_hf_headers(token=self.token if same_host else False)
        headers["Accept-Encoding"] = "identity"  # byte offsets must be offsets in the file
        return headers

    def _fetch(
        self,
        entry: CatalogEntry,
        file: RemoteFile,
        files_dir: Path,
        index: int,
        meter: _Meter,
        cancelled: Callable[[], bool],
    ) -> str:
        """One file into files_dir, resuming its .part; returns its verified sha256."""
        done = files_dir / file.name
        digest = hashlib.sha256()
        if done.is_file() and done.stat().st_size == file.size:
            _hash_existing(done, digest)
            return digest.hexdigest()
        part = _part(files_dir, file)
        part.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.is_file() else 0
        if offset > file.size:
            part.unlink()
            offset = 0
        if offset:
            _hash_existing(part, digest)
        meter.start_file(file.name, index)

        if offset < file.size:
            headers = self._headers_for(file.url)
            if offset:
                headers["Range"] = f"bytes={offset}-"
            timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
            try:
                with get_session().stream(
                    "GET", file.url, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code == 416:  # nothing left to send: redo this file
                        part.unlink(missing_ok=True)
                        raise DownloadError(
                            f"The Hub could not resume {file.name}; press Download to start "
                            "this file again."
                        )
                    hf_raise_for_status(response)
                    mode = "ab"
                    if offset and response.status_code != 206:  # the server ignored Range
                        meter.rewind(offset)
                        offset, digest, mode = 0, hashlib.sha256(), "wb"
                    with open(part, mode) as out:
                        for chunk in response.iter_bytes():
                            if cancelled():
                                raise DownloadCancelled(self._cancel_message(entry))
                            out.write(chunk)
                            digest.update(chunk)
                            offset += len(chunk)
                            meter.add(len(chunk))
                            if offset > file.size:
                                break
            except (DownloadCancelled, DownloadError):
                raise
            except Exception as exc:
                raise self._translate(exc, entry) from exc

        if offset != file.size:
            if offset > file.size:
                part.unlink(missing_ok=True)
            raise DownloadError(
                f"{file.name} arrived incomplete ({_human(offset)} of {_human(file.size)}); "
                "press Download again to continue."
            )
        actual = digest.hexdigest()
        if SHA256_ETAG.match(file.etag) and actual != file.etag:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{file.name} was damaged in transit (its checksum does not match); it was "
                "deleted, press Download to fetch it again."
            )
        os.replace(part, done)
        return actual

    def _install(self, entry: CatalogEntry, files_dir: Path) -> Path:
        """One rename into the models folder, under a free name."""
        source = files_dir / entry.files[0] if entry.kind == "file" else files_dir
        target = _free_name(self.target_path(entry))
        try:
            os.replace(source, target)
        except OSError as exc:
            raise DownloadError(
                f"Downloaded, but could not move it to {target}: {exc.strerror or exc}."
            ) from exc
        return target

    def _remember_hash(self, entry: CatalogEntry, path: Path, digests: dict[str, str]) -> None:
        """A verified digest is the A1111 hash too when it covers exactly the hashed files."""
        if self.hash_cache is None:
            return
        try:
            if entry.kind == "file":
                self.hash_cache.remember(path, digests[entry.files[0]])
                return
            hashed = hashed_files(path)
            if len(hashed) == 1:
                name = hashed[0].relative_to(path).as_posix()
                if name in digests:
                    self.hash_cache.remember(path, digests[name])
        except (OSError, ValueError, KeyError, LibraryError):
            pass  # the hash is then computed on first use instead


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (another model's partial download) or already gone


def _part(files_dir: Path, file: RemoteFile) -> Path:
    return files_dir / (file.name + PART_SUFFIX)


def _hash_existing(path: Path, digest: hashlib._Hash) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)


def _free_name(target: Path) -> Path:
    """target, or 'name (2).ext' if something is already there."""
    if not target.exists():
        return target
    stem, suffix = (target.stem, target.suffix) if target.suffix else (target.name, "")
    for n in range(2, 1000):
        candidate = target.with_name(f"{stem} ({n}){suffix}")
        if not candidate.exists():
            return candidate
    raise DownloadError(f"Too many copies of {target.name} in {target.parent}.")


class _Meter:
    """Turns byte counts into throttled DownloadProgress callbacks with a smoothed speed."""

    def __init__(
        self, total: int, on_disk: int, count: int, callback: ProgressFn | None, interval: float
    ) -> None:
        self.total, self.done, self.resumed, self.count = total, on_disk, on_disk, count
        self.callback, self.interval = callback, interval
        self.name, self.index = "", 0
        self._last_emit = 0.0
        self._window: list[tuple[float, int]] = [(time.monotonic(), on_disk)]

    def start_file(self, name: str, index: int) -> None:
        self.name, self.index = name, index
        self._emit(force=True)

    def rewind(self, nbytes: int) -> None:
        self.done -= nbytes

    def add(self, nbytes: int) -> None:
        self.done += nbytes
        self._emit()

    def finish(self) -> None:
        self._emit(force=True)

    def _emit(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last_emit < self.interval:
            return
        self._last_emit = now
        self._window.append((now, self.done))
        self._window = [w for w in self._window if now - w[0] <= 5.0] or self._window[-1:]
        t0, b0 = self._window[0]
        speed = (self.done - b0) / (now - t0) if now > t0 else 0.0
        self.callback(
            DownloadProgress(
                done_bytes=self.done,
                total_bytes=self.total,
                file_name=self.name,
                file_index=self.index,
                file_count=self.count,
                resumed_bytes=self.resumed,
                bytes_per_second=max(speed, 0.0),
            )
        )
