"""A fake Binance public data archive on 127.0.0.1 (no network) for `data fetch` tests.

Serves `/data/futures/um/monthly/klines/SYMBOL/1m/NAME.zip` and `NAME.zip.CHECKSUM` from
`files` (path -> bytes), honours `Range: bytes=N-` with a 206 unless `ignore_range`, answers
404 for anything it does not hold, and records every request (path and Range header).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ArchiveServer:
    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(server: ArchiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            body = server.files.get(self.path)
            if body is None:
                self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
                return
            if range_header and not server.ignore_range:
                start = int(range_header.removeprefix("bytes=").removesuffix("-"))
                if start >= len(body):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    return
                content_range = f"bytes {start}-{len(body) - 1}/{len(body)}"
                self._send(206, body[start:], {"Content-Range": content_range})
                return
            self._send(200, body)

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_archive(server: ArchiveServer) -> Iterator[ArchiveServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
