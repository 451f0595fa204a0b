"""A local HTTP server for the download.sh tests: byte ranges, dropped connections, a request log.

The server runs in a thread on 127.0.0.1 and serves in-memory files at URL paths. It answers
`Range: bytes=N-` with 206 (as the organisers' object store does), can cut the connection
half-way through the first response for a path (an interrupted transfer), and logs every request
(path, Range header, bytes sent).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    drop_first: dict[str, float] = field(default_factory=dict)  # path -> fraction sent before cutting
    log: list[tuple[str, str | None, int]] = field(default_factory=list)

    def requests(self, path: str) -> list[tuple[str | None, int]]:
        return [(rng, sent) for p, rng, sent in self.log if p == path]


def _handler(served: Served):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean; requests go to served.log
            return None

        def do_GET(self) -> None:
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404)
                served.log.append((self.path, None, 0))
                return
            range_header = self.headers.get("Range")
            start = int(range_header.split("=")[1].split("-")[0]) if range_header else 0
            if start >= len(body) and range_header:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                served.log.append((self.path, range_header, 0))
                return
            self.send_response(206 if range_header else 200)
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            payload = body[start:]
            fraction = served.drop_first.pop(self.path, None)
            if fraction is not None:
                payload = payload[: int(len(payload) * fraction)]
                self.close_connection = True
            self.wfile.write(payload)
            self.wfile.flush()
            served.log.append((self.path, range_header, len(payload)))

    return Handler


@pytest.fixture
def server():
    """(base URL, Served) of a fresh local server; shut down after the test."""
    served = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


def _make_tarball(top: str, files: dict[str, bytes]) -> bytes:
    """A .tar.gz holding `top/<name>` for each file (the official archives' shape)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def make_tarball():
    return _make_tarball


@pytest.fixture
def download():
    """run(args, assets_root, base_url, downloader="wget", **env) -> the finished `bash download.sh`."""
    def run(args: list[str], assets_root: Path, base_url: str, downloader: str = "wget",
            **extra_env: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, BSYNTH_ASSETS_ROOT=str(assets_root), BSYNTH_DOWNLOAD_BASE_URL=base_url,
                   BSYNTH_DOWNLOADER=downloader, BSYNTH_DOWNLOAD_TRIES="3", **extra_env)
        return subprocess.run(["bash", str(REPO_ROOT / "download.sh"), *args], env=env,
                              capture_output=True, text=True, timeout=300)
    return run
