"""A fake Binance USD-M REST server on 127.0.0.1 for tests of the real wiring (no network).

Serves `GET /fapi/v1/exchangeInfo` (the listed symbols as trading perpetuals, or a scripted
failure) and `GET /fapi/v1/klines` (rows from test_binance's `kline_row`, up to the minute open
at `now()`), so a source built from config with `binance_base_url` pointing here runs exactly
as it would against the exchange.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from test_binance import exchange_info_body, kline_row

MINUTE_MS = 60_000


@dataclass
class FapiServer:
    """What the server lists and answers; `paths` records every request path in order."""

    now: Callable[[], float]
    listed: Sequence[str] = ("BTCUSDT", "ETHUSDT")
    #: "ok", "500" (HTTP 500) or "drop" (the connection closes with no answer)
    exchange_info: str = "ok"
    paths: list[str] = field(default_factory=list)
    url: str = ""

    def klines(self, symbol: str, start_ms: int | None, limit: int) -> list[list[object]]:
        now_ms = int(self.now() * 1000)
        open_now_ms = now_ms - now_ms % MINUTE_MS
        first_ms = open_now_ms - (limit - 1) * MINUTE_MS if start_ms is None else start_ms
        first_ms += -first_ms % MINUTE_MS
        rows = []
        minute_ms = first_ms
        while minute_ms <= open_now_ms and len(rows) < limit:
            rows.append(kline_row(symbol, minute_ms, open_now=minute_ms == open_now_ms))
            minute_ms += MINUTE_MS
        return rows


def _handler(server: FapiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            server.paths.append(parts.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/fapi/v1/exchangeInfo":
                if server.exchange_info == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if server.exchange_info == "500":
                    self._json(500, {"code": -1000, "msg": "An unknown error occurred."})
                    return
                self._json(200, exchange_info_body(server.listed))
                return
            if parts.path != "/fapi/v1/klines":
                self._json(404, {"code": -1, "msg": "Not found."})
                return
            symbol = query.get("symbol", "")
            if symbol not in server.listed:
                self._json(400, {"code": -1121, "msg": "Invalid symbol."})
                return
            start = query.get("startTime")
            rows = server.klines(
                symbol, None if start is None else int(start), int(query.get("limit", "500"))
            )
            self._json(200, rows)

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a test's output is for its assertions

    return Handler


@contextmanager
def fapi_server(server: FapiServer) -> Iterator[FapiServer]:
    """Serve on 127.0.0.1 (a free port) for the life of the block; `server.url` is set."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A 127.0.0.1 URL nobody listens on: connecting is refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
