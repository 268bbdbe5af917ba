"""The gallery: every generated image as a PNG on disk plus a searchable SQLite index.

No Qt here, so the CLI can save into the same gallery the app shows. One connection is
shared behind a lock: the worker thread saves while the UI thread pages through results,
and each statement is short (PNG encoding happens outside the lock).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sd_desktop.atomic_files import write_text_atomic
from sd_desktop.gallery import files, index
from sd_desktop.gallery.index import Filters, IndexUnusable
from sd_desktop.gallery.locations import (
    FAVOURITES_FILE_NAME,
    INDEX_FILE_NAME,
    default_gallery_folder,
)
from sd_desktop.infotext import GenerationParams, InfotextError, parse_infotext

log = logging.getLogger(__name__)

# A temp file older than this is debris from a crash, not a save in progress.
_STALE_TEMP_S = 3600.0
# sync() writes this many rows per transaction, so readers on other threads wait at most
# for one batch, never for a whole rebuild.
_SYNC_BATCH = 256
SORT_ORDERS = ("newest", "oldest")
NO_INDEX_YET = "no index yet"
"""rebuild_reason of a gallery opened for the first time."""


class GalleryError(Exception):
    """A gallery operation that failed for a reason the user can act on; str() is one line."""


@dataclass(frozen=True)
class GalleryItem:
    """One image in the gallery, as the index knows it."""

    id: int
    path: Path
    created: datetime
    params: GenerationParams
    favourite: bool = False

    @property
    def prompt(self) -> str:
        return self.params.prompt

    @property
    def model(self) -> str:
        return self.params.model

    @property
    def seed(self) -> int:
        return self.params.seed

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class _ScannedImage:
    relative: str
    created: float
    params: GenerationParams
    infotext: str


class GalleryStore:
    """Images in `folder` (default: Pictures/sd-desktop) indexed in `folder/.gallery-index.sqlite`.

    Opening repairs what it can without asking: a missing, corrupt or outdated index is
    rebuilt from the PNGs; files added or removed behind our back are picked up
    (`scan_on_open`); temp files left by a crash are cleaned away.

    Reading thousands of PNG headers takes seconds, which an app must not spend on its
    UI thread. With `scan_later` opening reads no PNG at all: an unusable index is
    replaced by an empty one (`rebuild_reason` says why) and the owner calls sync() on
    another thread to fill it; the store is usable, and saves work, meanwhile.
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        index_path: str | Path | None = None,
        scan_on_open: bool = True,
        scan_later: bool = False,
    ) -> None:
        self._folder = Path(folder if folder is not None else default_gallery_folder())
        self._folder = self._folder.expanduser().resolve()
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"Cannot create the gallery folder {self._folder}: {exc}") from exc
        self._index_path = Path(index_path) if index_path else self._folder / INDEX_FILE_NAME
        self._favourites_path = self._folder / FAVOURITES_FILE_NAME
        self._lock = threading.RLock()
        self._next_numbers: dict[Path, int] = {}
        self._conn: sqlite3.Connection | None = None
        self.rebuild_reason: str | None = None
        """Why the index was rebuilt while opening (None when it was healthy)."""
        self.needs_scan = scan_later
        """Opened with `scan_later` and no sync() has finished since."""

        files.remove_stale_temp_files(self._folder, _STALE_TEMP_S, time.time())
        reason = self._open_existing_index()
        if reason is not None:
            level = logging.INFO if reason == NO_INDEX_YET else logging.WARNING
            log.log(level, "Rebuilding gallery index %s: %s", self._index_path, reason)
            self.rebuild_reason = reason
            self._replace_index([] if scan_later else self._scan(files.iter_pngs(self._folder)))
        elif scan_on_open and not scan_later:
            self.sync()

    # ------------------------------------------------------------------ lifecycle

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def index_path(self) -> Path:
        return self._index_path

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_existing_index(self) -> str | None:
        """Open the index; return why it must be rebuilt, or None when it is usable."""
        if not self._index_path.exists():
            return NO_INDEX_YET
        conn: sqlite3.Connection | None = None
        try:
            conn = index.connect(self._index_path)
            index.check_health(conn)
        except IndexUnusable as exc:
            reason = str(exc)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if not index.is_corruption(exc):
                raise GalleryError(
                    f"Cannot open the gallery index {self._index_path}: {exc}."
                ) from exc
            return f"damaged database ({exc})"
        else:
            self._conn = conn
            return None
        conn.close()
        return reason

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError("The gallery is closed.")
        return self._conn

    # ------------------------------------------------------------------ saving

    def save(
        self, image: Any, params: GenerationParams, *, created: datetime | None = None
    ) -> GalleryItem:
        """Write `image` (PIL) atomically as `YYYY-MM-DD/NNNNN-seed.png` and index it."""
        # Whole seconds, as the PNG's Creation Time records it, so a rebuild sorts the same.
        created = (created or datetime.now()).astimezone().replace(microsecond=0)
        day = self._folder / files.day_folder_name(created)
        with self._lock:
            number = self._next_numbers.get(day)
            if number is None:
                number = files.next_number(day)
            self._next_numbers[day] = number + 1
        try:
            path, used = files.write_png_atomic(image, day, params, created, number)
        except OSError as exc:
            reason = exc.strerror or exc
            raise GalleryError(f"Could not save the image in {day}: {reason}.") from exc
        with self._lock:
            self._next_numbers[day] = max(self._next_numbers.get(day, 0), used + 1)
            item_id = self._insert(
                self._relative(path), created.timestamp(), params, params.to_infotext()
            )
        return GalleryItem(item_id, path, created, params, False)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self._folder).as_posix()

    def _insert(
        self,
        relative: str,
        created: float,
        params: GenerationParams,
        infotext: str,
        favourite: bool = False,
        conn: sqlite3.Connection | None = None,
    ) -> int:
        db = conn or self._db()
        cursor = db.execute(
            "INSERT INTO images (path, created, prompt, negative, model, model_hash, seed, "
            "sampler, steps, cfg, width, height, favourite, infotext) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                relative,
                created,
                params.prompt,
                params.negative_prompt,
                params.model,
                params.model_hash,
                index.clamp_int64(params.seed),
                params.sampler,
                params.steps,
                params.cfg_scale,
                params.width,
                params.height,
                int(favourite),
                infotext,
            ),
        )
        return int(cursor.lastrowid or 0)

    # ------------------------------------------------------------------ reading

    def query(
        self,
        text: str | None = None,
        model: str | None = None,
        favourites_only: bool = False,
        sort: str = "newest",
        limit: int = 200,
        offset: int = 0,
    ) -> list[GalleryItem]:
        """One page of images matching all given filters, `sort`ed by creation time.

        `text` matches prompt words by prefix (all words must occur); `model` is exact.
        """
        where, args = index.where_clause(Filters(text, model, favourites_only))
        order = index.order_clause(sort)
        sql = f"SELECT {index.COLUMNS} FROM images{where}{order} LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db().execute(sql, [*args, max(0, limit), max(0, offset)]).fetchall()
        return [self._item(row) for row in rows]

    def count(
        self, text: str | None = None, model: str | None = None, favourites_only: bool = False
    ) -> int:
        where, args = index.where_clause(Filters(text, model, favourites_only))
        with self._lock:
            row = self._db().execute(f"SELECT COUNT(*) FROM images{where}", args).fetchone()
        return int(row[0])

    def matches(
        self,
        item_id: int,
        text: str | None = None,
        model: str | None = None,
        favourites_only: bool = False,
    ) -> bool:
        """Whether the image would be in query() with these filters (for live updates)."""
        where, args = index.where_clause(Filters(text, model, favourites_only))
        where = f"{where} AND id = ?" if where else " WHERE id = ?"
        with self._lock:
            row = self._db().execute(f"SELECT 1 FROM images{where}", [*args, item_id]).fetchone()
        return row is not None

    def get(self, item_id: int) -> GalleryItem | None:
        with self._lock:
            row = (
                self._db()
                .execute(f"SELECT {index.COLUMNS} FROM images WHERE id = ?", (item_id,))
                .fetchone()
            )
        return None if row is None else self._item(row)

    def get_by_path(self, path: str | Path) -> GalleryItem | None:
        try:
            relative = self._relative(Path(path).resolve())
        except ValueError:
            return None
        with self._lock:
            row = (
                self._db()
                .execute(f"SELECT {index.COLUMNS} FROM images WHERE path = ?", (relative,))
                .fetchone()
            )
        return None if row is None else self._item(row)

    def models(self) -> list[str]:
        """Distinct model names, for the filter (images without one are left out)."""
        with self._lock:
            rows = self._db().execute(
                "SELECT DISTINCT model FROM images WHERE model != '' ORDER BY model COLLATE NOCASE"
            )
            return [row[0] for row in rows]

    def _item(self, row: tuple[Any, ...]) -> GalleryItem:
        (item_id, rel, created, prompt, negative, model, model_hash, seed) = row[:8]
        (sampler, steps, cfg, width, height, favourite, infotext) = row[8:]
        params: GenerationParams | None = None
        if infotext:
            try:
                params = parse_infotext(infotext)
            except InfotextError:
                params = None
        if params is None:
            params = GenerationParams(
                prompt=prompt,
                negative_prompt=negative,
                steps=steps,
                sampler=sampler,
                cfg_scale=cfg,
                seed=seed,
                width=width,
                height=height,
                model_hash=model_hash,
                model=model,
            )
        return GalleryItem(
            id=item_id,
            path=self._folder / rel,
            created=datetime.fromtimestamp(created).astimezone(),
            params=params,
            favourite=bool(favourite),
        )

    # ------------------------------------------------------------------ changing

    def set_favourite(self, item_id: int, favourite: bool) -> GalleryItem:
        with self._lock:
            cursor = self._db().execute(
                "UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), item_id)
            )
            if cursor.rowcount == 0:
                raise GalleryError(f"Image {item_id} is no longer in the gallery.")
            self._write_favourites()
            item = self.get(item_id)
        assert item is not None
        return item

    def delete(self, item_id: int, trash: Callable[[Path], None]) -> None:
        """Move the image's file away with `trash` (the UI passes the system trash), then
        forget it. The row stays when the file could not be removed, so nothing vanishes
        from the gallery that is still on disk."""
        item = self.get(item_id)
        if item is None:
            return
        if item.path.exists():
            try:
                trash(item.path)
            except OSError as exc:
                raise GalleryError(f"Could not delete {item.path.name}: {exc}.") from exc
            if item.path.exists():
                raise GalleryError(f"Could not move {item.path.name} to the trash.")
        with self._lock:
            self._db().execute("DELETE FROM images WHERE id = ?", (item_id,))
            if item.favourite:
                self._write_favourites()

    # ------------------------------------------------------------------ favourites file

    def _write_favourites(self) -> None:
        """Favourites live only in the index, so we keep a plain list beside it to carry
        them across a rebuild."""
        paths = [row[0] for row in self._db().execute("SELECT path FROM images WHERE favourite")]
        try:
            write_text_atomic(self._favourites_path, "".join(p + "\n" for p in paths))
        except OSError as exc:
            log.warning("Could not write %s: %s", self._favourites_path, exc)

    def _read_favourites(self) -> set[str]:
        try:
            text = self._favourites_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return set()
        return {line for line in text.splitlines() if line}

    # ------------------------------------------------------------------ rebuilding

    def _scan(
        self, paths: Iterable[Path], should_stop: Callable[[], bool] | None = None
    ) -> list[_ScannedImage] | None:
        """The PNGs' parameters; None when `should_stop` said so part way."""
        scanned = []
        for path in paths:
            if should_stop is not None and should_stop():
                return None
            image = _read_png(path)
            if image is not None:
                created, params, infotext = image
                scanned.append(_ScannedImage(self._relative(path), created, params, infotext))
        return scanned

    def rebuild(self) -> int:
        """Recreate the index from the PNGs' infotext; returns how many images it holds.

        Files are read before the lock is taken, so readers are blocked only for the swap.
        """
        scanned = self._scan(files.iter_pngs(self._folder)) or []
        self._replace_index(scanned)
        return len(scanned)

    def _replace_index(self, scanned: list[_ScannedImage]) -> None:
        """A new index file holding exactly `scanned` (favourites from the side file)."""
        favourites = self._read_favourites()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            index.remove_index_files(self._index_path)
            try:
                conn = index.connect(self._index_path)
                conn.execute("BEGIN")
                index.create_schema(conn)
                for image in sorted(scanned, key=lambda s: (s.created, s.relative)):
                    self._insert(
                        image.relative,
                        image.created,
                        image.params,
                        image.infotext,
                        image.relative in favourites,
                        conn,
                    )
                index.set_version(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise GalleryError(
                    f"Cannot write the gallery index {self._index_path}: {exc}."
                ) from exc
            self._conn = conn
            self._next_numbers.clear()

    def sync(self, should_stop: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Index PNGs that appeared and forget ones that disappeared behind our back
        (copied in, deleted in the file manager). Returns (added, removed).

        Safe on any thread while the app saves and pages through results: PNG headers are
        read without the lock, rows are written in short batches, and an image saved
        meanwhile is neither indexed twice nor forgotten. `should_stop` is polled between
        files; when it returns True nothing more is written and (0, 0) is returned.
        """
        on_disk = {self._relative(p): p for p in files.iter_pngs(self._folder)}
        with self._lock:
            known = {row[0] for row in self._db().execute("SELECT path FROM images")}
        new = sorted(on_disk.keys() - known)
        # A file saved after the listing is in the index but not in on_disk: look again.
        gone = [rel for rel in known - on_disk.keys() if not (self._folder / rel).exists()]
        scanned = self._scan((on_disk[rel] for rel in new), should_stop)
        if scanned is None:
            return 0, 0
        if not scanned and not gone:
            self.needs_scan = False
            return 0, 0
        scanned.sort(key=lambda s: (s.created, s.relative))
        favourites = self._read_favourites() if scanned else set()
        added = 0
        if gone:
            forget = [(rel,) for rel in gone]
            with self._lock:
                self._write_batch(
                    lambda db: db.executemany("DELETE FROM images WHERE path = ?", forget)
                )
        for start in range(0, len(scanned), _SYNC_BATCH):
            if should_stop is not None and should_stop():
                break
            batch = scanned[start : start + _SYNC_BATCH]
            with self._lock:
                added += self._write_batch(lambda db, b=batch: self._insert_new(db, b, favourites))
        else:
            self.needs_scan = False
        return added, len(gone)

    def _write_batch(self, write: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `write` in one transaction (the caller holds the lock)."""
        db = self._db()
        db.execute("BEGIN")
        try:
            result = write(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _insert_new(
        self, db: sqlite3.Connection, images: list[_ScannedImage], favourites: set[str]
    ) -> int:
        """Insert the images the index does not hold yet (a save may have beaten us)."""
        added = 0
        for image in images:
            if db.execute("SELECT 1 FROM images WHERE path = ?", (image.relative,)).fetchone():
                continue
            self._insert(
                image.relative,
                image.created,
                image.params,
                image.infotext,
                image.relative in favourites,
                db,
            )
            added += 1
        return added


def _read_png(path: Path) -> tuple[float, GenerationParams, str] | None:
    """(created time, params, infotext) of one PNG, or None when it is not a readable image.

    A PNG without (valid) infotext is still shown, with empty parameters.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = image.info.get("parameters")
            stamp = image.info.get(files.CREATION_TIME_KEY)
            mtime = path.stat().st_mtime
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    created = mtime
    if isinstance(stamp, str):
        try:
            created = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            created = mtime
    infotext = text if isinstance(text, str) else ""
    params = GenerationParams(prompt="", seed=-1)
    if infotext:
        try:
            params = parse_infotext(infotext)
        except InfotextError:
            infotext = ""
    return created, params, infotext
