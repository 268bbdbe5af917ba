"""The SQLite index of the gallery: schema, health check and the query builder.

The PNG files are the truth; this database only makes 10,000 images searchable in
milliseconds. So when it is missing, damaged or from another schema version we do not
try to repair it: we throw it away and rebuild it from the files' infotext.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

# sqlite3 primary result codes that mean "this file is not a usable database".
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

COLUMNS = (
    "id, path, created, prompt, negative, model, model_hash, seed, sampler, steps, cfg, "
    "width, height, favourite, infotext"
)

_SCHEMA = (
    """CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,      -- relative to the gallery folder, '/' separated
        created REAL NOT NULL,          -- unix time
        prompt TEXT NOT NULL,
        negative TEXT NOT NULL,
        model TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        seed INTEGER NOT NULL,
        sampler TEXT NOT NULL,
        steps INTEGER NOT NULL,
        cfg REAL NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        favourite INTEGER NOT NULL DEFAULT 0,
        infotext TEXT NOT NULL
    )""",
    "CREATE INDEX images_by_created ON images (created, id)",
    "CREATE INDEX images_by_model ON images (model, created, id)",
    "CREATE INDEX images_favourites ON images (created, id) WHERE favourite = 1",
    """CREATE VIRTUAL TABLE images_fts USING fts5 (
        prompt, content = 'images', content_rowid = 'id', tokenize = 'unicode61'
    )""",
    """CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt) VALUES (new.id, new.prompt);
    END""",
    """CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
    END""",
    """CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        INSERT INTO images_fts (rowid, prompt) VALUES (new.id, new.prompt);
    END""",
)


class IndexUnusable(Exception):
    """The index file must be rebuilt; the message says why (for the log)."""


@dataclass(frozen=True)
class Filters:
    """What the gallery is showing; the same object drives query(), count() and matches()."""

    text: str | None = None
    model: str | None = None
    favourites_only: bool = False


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for one writer and readers on other threads/processes."""
    conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def is_corruption(error: sqlite3.DatabaseError) -> bool:
    """True for "not a database"/"malformed"; False for locks and I/O, which must not
    make us delete an index another process is using."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(error).lower()
    return "not a database" in text or "malformed" in text


def check_health(conn: sqlite3.Connection) -> None:
    """Raise IndexUnusable unless this is a complete index of our current schema."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise IndexUnusable(f"schema version {version}, expected {SCHEMA_VERSION}")
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise IndexUnusable(f"integrity check failed: {result}")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    missing = {"images", "images_fts"} - tables
    if missing:
        raise IndexUnusable(f"missing tables: {', '.join(sorted(missing))}")


def remove_index_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables in the caller's transaction, at user_version 0: set_version() comes
    last, so a rebuild that dies half way is redone on the next start."""
    for statement in _SCHEMA:
        conn.execute(statement)


def set_version(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def clamp_int64(value: int) -> int:
    """Seeds from foreign files can exceed SQLite's integers; the infotext keeps the truth."""
    return value if _INT64_MIN <= value <= _INT64_MAX else -1


_WORD = re.compile(r"\w", re.UNICODE)


def fts_query(text: str) -> str | None:
    """Turn what a person typed into a safe FTS5 query: every word must appear, each as a
    prefix ("cat sit" finds "cats sitting"). None when nothing searchable was typed.

    Each word is quoted, so FTS5 operators (AND, NEAR, *, :) in the input are just text.
    """
    terms = [word.replace('"', '""') for word in text.split() if _WORD.search(word)]
    if not terms:
        return None
    return " ".join(f'"{term}"*' for term in terms)


def where_clause(filters: Filters) -> tuple[str, list[object]]:
    conditions: list[str] = []
    args: list[object] = []
    match = fts_query(filters.text) if filters.text else None
    if match is not None:
        conditions.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        args.append(match)
    if filters.model is not None:
        conditions.append("model = ?")
        args.append(filters.model)
    if filters.favourites_only:
        conditions.append("favourite = 1")
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", args


def order_clause(sort: str) -> str:
    if sort == "newest":
        return " ORDER BY created DESC, id DESC"
    if sort == "oldest":
        return " ORDER BY created ASC, id ASC"
    raise ValueError(f"Unknown sort order {sort!r}; use 'newest' or 'oldest'.")
