"""A local stand-in for the Hugging Face Hub, just enough for huggingface_hub's downloads.

Two servers on 127.0.0.1 with random free ports, like the real thing:
- the hub: HEAD/GET /{repo}/resolve/{revision}/{path}. Small files are answered
  directly (ETag = git-style sha1). Large ("LFS") files get a 302 to the CDN with
  X-Linked-Etag (the sha256), X-Linked-Size and X-Repo-Commit, which is what
  huggingface_hub.get_hf_file_metadata reads.
- the CDN (another origin, so huggingface_hub does not follow the redirect on
  HEAD): GET /cdn/{sha256} with Range support, optionally throttled.

Every request is recorded so tests can check, e.g., that a retry sent a Range
header. Both servers shut down on exit of the `with` block, or by themselves
after `lifetime` seconds, so a failing test cannot leave them running.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

LFS_THRESHOLD = 1024  # files at least this large are served like LFS files
COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16


class FakeHub:
    """Serves {repo_id: {repo path: bytes or Path}} until the `with` block ends."""

    def __init__(
        self,
        repos: dict[str, dict[str, bytes | Path]],
        *,
        rate: float | None = None,
        chunk: int = 16 * 1024,
        corrupt: bool = False,
        ignore_range: bool = False,
        lifetime: float = 120.0,
    ) -> None:
        self.repos = {
            repo: {
                name: (data if isinstance(data, bytes) else Path(data).read_bytes())
                for name, data in files.items()
            }
            for repo, files in repos.items()
        }
        self.blobs = {
            hashlib.sha256(data).hexdigest(): data
            for files in self.repos.values()
            for data in files.values()
        }
        self.rate = rate  # bytes per second for CDN bodies; None: as fast as possible
        self.chunk = chunk
        self.corrupt = corrupt  # flip one byte in every CDN body
        self.ignore_range = ignore_range  # answer Range requests with the whole file (200)
        self.lifetime = lifetime
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self._timer: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeHub:
        self.hub = self._start("hub")
        self.cdn = self._start("cdn")
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_origin(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def _start(self, role: str) -> _Server:
        server = _Server(("127.0.0.1", 0), _handler(self, role))
        thread = threading.Thread(target=server.serve_forever, name=f"fake-{role}", daemon=True)
        thread.start()
        self._servers.append(server)
        return server

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def ranges(self) -> list[str]:
        """Range headers of the CDN GETs, in order."""
        with self._lock:
            return [r.range for r in self.requests if r.server == "cdn" and r.range]


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output clean

        def do_HEAD(self) -> None:  # noqa: N802
            self._dispatch(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch(body=True)

        def _dispatch(self, body: bool) -> None:
            hub.record(Request(role, self.command, self.path, self.headers.get("Range")))
            try:
                if role == "hub":
                    self._resolve(body)
                else:
                    self._blob(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (a cancelled download)

        def _error(self, status: int, code: str) -> None:
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _resolve(self, body: bool) -> None:
            match = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", self.path.split("?")[0])
            if not match:
                return self._error(404, "RepoNotFound")
            repo, revision, name = match.group(1), unquote(match.group(2)), unquote(match.group(3))
            files = hub.repos.get(repo)
            if files is None:
                return self._error(401, "RepoNotFound")
            if revision not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound")
            data = files.get(name)
            if data is None:
                return self._error(404, "EntryNotFound")
            if len(data) >= LFS_THRESHOLD:
                sha = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                self.send_header("Location", f"{hub.cdn_origin}/cdn/{sha}")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", f'"{_git_sha1(data)}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{_git_sha1(data)}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)
            return None

        def _blob(self, body: bool) -> None:
            match = re.match(r"^/cdn/([0-9a-f]{64})$", self.path)
            data = hub.blobs.get(match.group(1)) if match else None
            if data is None:
                return self._error(404, "EntryNotFound")
            if hub.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start, end = 0, len(data) - 1
            wanted = self.headers.get("Range")
            status = 200
            if wanted and not hub.ignore_range:
                parsed = _RANGE.match(wanted.strip())
                if not parsed or int(parsed.group(1)) >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                start = int(parsed.group(1))
                if parsed.group(2):
                    end = min(int(parsed.group(2)), end)
                status = 206
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if not body:
                return None
            position = start
            while position <= end:
                piece = data[position : min(position + hub.chunk, end + 1)]
                self.wfile.write(piece)
                self.wfile.flush()
                position += len(piece)
                if hub.rate:
                    time.sleep(len(piece) / hub.rate)
            return None

    return Handler
