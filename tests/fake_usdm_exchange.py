"""A fake Binance USD-M futures exchange on 127.0.0.1 for tests of real execution (no network).

It checks what the real one checks before doing anything: the API key header, the HMAC-SHA256
signature of the query string, and the timestamp against its own clock and `recvWindow`
(-1021). It keeps one-way positions, orders, algo (conditional) orders and fills:

- `POST /fapi/v1/order` MARKET (optionally reduceOnly) fills at `prices[symbol]`; quantities
  must be multiples of the symbol's step (-1111); STOP_MARKET there is refused with -4120 as
  the real one does since the conditional orders moved to the algo service;
- `POST /fapi/v1/algoOrder` STOP_MARKET (closePosition or reduceOnly) rests until
  `replay_kline` sees the price trade through its trigger, then closes the position;
- `GET/DELETE /fapi/v1/order`, `GET /fapi/v1/openOrders`, `GET /fapi/v1/openAlgoOrders`,
  `DELETE /fapi/v1/algoOrder`, `GET /fapi/v2/positionRisk`, `GET /fapi/v1/userTrades`,
  `DELETE /fapi/v1/allOpenOrders`, `GET /fapi/v1/positionSide/dual` (`hedge_mode`),
  `GET /fapi/v1/time`, `GET /fapi/v1/exchangeInfo`, `GET /fapi/v1/ticker/price`.

Faults are scripted per request (`inject(path, fault)`, consumed by the first request to that
path, or to "METHOD path"): "ok" (nothing), "429"/"418" (with Retry-After), "500", "drop"
(the connection closes before the order is looked at), "lost" (the order is accepted and
filled, then the connection closes with no answer), "margin" (-2019), "partial" (a MARKET
order fills `partial_share` of its quantity; the rest fills when the order is next looked
up), "partial-expired" (a MARKET order fills `partial_share` and the rest expires at once:
status EXPIRED, as when the book runs dry), "partial-stuck" (a MARKET order fills
`partial_share` and the rest never fills: look-ups show it PARTIALLY_FILLED until it is
cancelled), "reject" (an algo order refused with -2021, as when the price already crossed the
trigger), "unseen" (an order look-up answers -2013, as when the exchange took the order
but has not recorded it yet), "garble:FIELD" (the request is done, but FIELD in the answer,
in each row of a list, reads "abc"; "garble:FIELD=TEXT" gives it TEXT, e.g. "NaN"),
"missing:FIELD" (the request is done, FIELD is left out of the answer). Not a fault but a
setting: `skew_ms`, the server clock's
lead over the test clock, which makes every request signed on the old offset fail with -1021.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-key-0123456789abcdef"
API_SECRET = "test-secret-fedcba9876543210"
STEP = Decimal("0.001")
TICK = Decimal("0.1")


@dataclass
class FakeOrder:
    order_id: int
    cid: str
    symbol: str
    side: str
    qty: Decimal
    reduce_only: bool
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    pending_fill_price: Decimal | None = None  # a partial fill's remainder fills later

    def record(self) -> dict[str, Any]:
        avg = self.quote / self.executed if self.executed else Decimal(0)
        return {
            "orderId": self.order_id,
            "clientOrderId": self.cid,
            "symbol": self.symbol,
            "side": self.side,
            "type": "MARKET",
            "origQty": str(self.qty),
            "executedQty": str(self.executed),
            "cumQuote": str(self.quote),
            "avgPrice": str(avg),
            "status": self.status,
            "reduceOnly": self.reduce_only,
        }


@dataclass
class FakeAlgo:
    algo_id: int
    cid: str
    symbol: str
    side: str
    trigger: Decimal
    close_position: bool
    qty: Decimal
    status: str = "NEW"

    def record(self) -> dict[str, Any]:
        return {
            "algoId": self.algo_id,
            "clientAlgoId": self.cid,
            "algoType": "CONDITIONAL",
            "orderType": "STOP_MARKET",
            "symbol": self.symbol,
            "side": self.side,
            "triggerPrice": str(self.trigger),
            "closePosition": self.close_position,
            "quantity": str(self.qty),
            "algoStatus": self.status,
        }


@dataclass
class FakeUsdmExchange:
    """The exchange's state; tests read it (under `lock`) and script its faults."""

    now: Callable[[], float]
    prices: dict[str, float] = field(default_factory=lambda: {"BTCUSDT": 50_000.0})
    skew_ms: int = 0
    #: the largest total notional the account's margin carries (-2019 past it)
    margin_limit_usd: float = 1e9
    partial_share: float = 0.5
    fee_rate: float = 0.0005
    retry_after_s: int = 7
    hedge_mode: bool = False
    url: str = ""
    positions: dict[str, Decimal] = field(default_factory=dict)
    entry_prices: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    algos: dict[int, FakeAlgo] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    #: every request: (method, path, params without the signature)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1000

    # -- test controls ----------------------------------------------------------------

    def inject(self, path: str, *faults: str) -> None:
        """The next requests to `path` meet these faults, one each, in order."""
        with self.lock:
            self.faults.setdefault(path, []).extend(faults)

    def server_ms(self) -> int:
        return int(self.now() * 1000) + self.skew_ms

    def position(self, symbol: str) -> float:
        with self.lock:
            return float(self.positions.get(symbol, Decimal(0)))

    def open_algos(self, symbol: str | None = None) -> list[FakeAlgo]:
        with self.lock:
            return [
                a
                for a in self.algos.values()
                if a.status == "NEW" and (symbol is None or a.symbol == symbol)
            ]

    def orders_sent(self, path: str = "/fapi/v1/order") -> int:
        return sum(1 for method, p, _ in self.log if method == "POST" and p == path)

    def replay_kline(
        self, symbol: str, open_: float, high: float, low: float, close: float
    ) -> None:
        """One replayed bar: resting stops trade through their triggers (at the trigger, or
        at the open when the bar gaps past it), then the price is the close."""
        with self.lock:
            for algo in list(self.algos.values()):
                if algo.status != "NEW" or algo.symbol != symbol:
                    continue
                trig = float(algo.trigger)
                hit = (algo.side == "SELL" and low <= trig) or (algo.side == "BUY" and high >= trig)
                if not hit:
                    continue
                gap = (algo.side == "SELL" and open_ < trig) or (
                    algo.side == "BUY" and open_ > trig
                )
                price = Decimal(repr(open_ if gap else trig))
                held = self.positions.get(symbol, Decimal(0))
                qty = abs(held) if algo.close_position else min(algo.qty, abs(held))
                algo.status = "FINISHED"
                if qty > 0:
                    self._fill_new(symbol, algo.side, qty, price, True, f"algo-{algo.algo_id}")
            self.prices[symbol] = close

    # -- exchange logic (under the lock) --------------------------------------------------

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _apply_fill(self, symbol: str, side: str, qty: Decimal, price: Decimal, oid: int) -> None:
        sign = 1 if side == "BUY" else -1
        held = self.positions.get(symbol, Decimal(0))
        new = held + sign * qty
        if held == 0 or (held > 0) == (sign > 0):
            old_cost = abs(held) * self.entry_prices.get(symbol, Decimal(0))
            self.entry_prices[symbol] = (old_cost + qty * price) / abs(new)
        if new == 0:
            self.positions.pop(symbol, None)
            self.entry_prices.pop(symbol, None)
        else:
            self.positions[symbol] = new
        self.trades.append(
            {
                "symbol": symbol,
                "orderId": oid,
                "side": side,
                "qty": str(qty),
                "price": str(price),
                "quoteQty": str(qty * price),
                "commission": str(qty * price * Decimal(repr(self.fee_rate))),
                "commissionAsset": "USDT",
                "time": self.server_ms(),
            }
        )

    def _fill_new(
        self, symbol: str, side: str, qty: Decimal, price: Decimal, reduce: bool, cid: str
    ) -> FakeOrder:
        order = FakeOrder(self._id(), cid, symbol, side, qty, reduce)
        self.orders[order.order_id] = order
        self._execute(order, qty, price)
        return order

    def _execute(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        order.executed += qty
        order.quote += qty * price
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        self._apply_fill(order.symbol, order.side, qty, price, order.order_id)

    def _find(self, params: dict[str, str]) -> FakeOrder | None:
        cid = params.get("origClientOrderId")
        for order in self.orders.values():
            if order.symbol == params.get("symbol") and (
                order.cid == cid or str(order.order_id) == params.get("orderId")
            ):
                return order
        return None

    def _new_order(self, p: dict[str, str], fault: str | None) -> tuple[int, Any]:
        symbol, side, kind = p.get("symbol", ""), p.get("side", ""), p.get("type", "")
        if symbol not in self.prices:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if kind != "MARKET":
            return 400, {
                "code": -4120,
                "msg": "Order type not supported for this endpoint. Please use the Algo"
                " Order API endpoints instead.",
            }
        qty = Decimal(p.get("quantity", "0"))
        if qty <= 0 or qty % STEP != 0:
            return 400, {"code": -1111, "msg": "Precision is over the maximum defined."}
        cid = p.get("newClientOrderId") or f"auto-{self._id()}"
        if any(
            o.cid == cid and o.status in ("NEW", "PARTIALLY_FILLED") for o in self.orders.values()
        ):
            return 400, {"code": -4116, "msg": "ClientOrderId is duplicated."}
        reduce = p.get("reduceOnly") == "true"
        held = self.positions.get(symbol, Decimal(0))
        sign = 1 if side == "BUY" else -1
        if reduce:
            if held == 0 or (held > 0) == (sign > 0):
                return 400, {"code": -2022, "msg": "ReduceOnly Order is rejected."}
            qty = min(qty, abs(held))
        price = Decimal(repr(self.prices[symbol]))
        if not reduce:
            notional = sum(
                abs(q) * Decimal(repr(self.prices[s])) for s, q in self.positions.items()
            )
            if fault == "margin" or float(notional + qty * price) > self.margin_limit_usd:
                return 400, {"code": -2019, "msg": "Margin is insufficient."}
        order = FakeOrder(self._id(), cid, symbol, side, qty, reduce)
        self.orders[order.order_id] = order
        if fault in ("partial", "partial-expired", "partial-stuck"):
            part = (qty * Decimal(repr(self.partial_share)) / STEP).to_integral_value() * STEP
            self._execute(order, part, price)
            if fault == "partial":
                order.pending_fill_price = price
            elif fault == "partial-expired":
                order.status = "EXPIRED"
        else:
            self._execute(order, qty, price)
        return 200, order.record()

    def _new_algo(self, p: dict[str, str], fault: str | None) -> tuple[int, Any]:
        if fault == "reject":
            return 400, {"code": -2021, "msg": "Order would immediately trigger."}
        if p.get("algoType") != "CONDITIONAL" or p.get("type") != "STOP_MARKET":
            return 400, {"code": -1116, "msg": "Invalid orderType."}
        symbol, side = p.get("symbol", ""), p.get("side", "")
        trigger = Decimal(p.get("triggerPrice", "0"))
        if trigger <= 0 or trigger % TICK != 0:
            return 400, {"code": -1111, "msg": "Precision is over the maximum defined."}
        price = self.prices.get(symbol)
        if price is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if (side == "SELL" and float(trigger) >= price) or (
            side == "BUY" and float(trigger) <= price
        ):
            return 400, {"code": -2021, "msg": "Order would immediately trigger."}
        cid = p.get("clientAlgoId") or f"auto-{self._id()}"
        if any(a.cid == cid and a.status == "NEW" for a in self.algos.values()):
            return 400, {"code": -4116, "msg": "ClientOrderId is duplicated."}
        close = p.get("closePosition") == "true"
        qty = Decimal(p.get("quantity", "0"))
        if not close and p.get("reduceOnly") != "true":
            return 400, {"code": -1106, "msg": "Parameter 'reduceOnly' required for this test."}
        algo = FakeAlgo(self._id(), cid, symbol, side, trigger, close, qty)
        self.algos[algo.algo_id] = algo
        return 200, algo.record()

    def handle(
        self, method: str, path: str, p: dict[str, str], fault: str | None
    ) -> tuple[int, Any]:
        if path == "/fapi/v1/time":
            return 200, {"serverTime": self.server_ms()}
        if path == "/fapi/v1/exchangeInfo":
            return 200, exchange_info(self.prices)
        if method == "POST" and path == "/fapi/v1/order":
            return self._new_order(p, fault)
        if method == "GET" and path == "/fapi/v1/order":
            order = self._find(p)
            if order is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            if order.pending_fill_price is not None and order.status == "PARTIALLY_FILLED":
                self._execute(order, order.qty - order.executed, order.pending_fill_price)
                order.pending_fill_price = None
            return 200, order.record()
        if method == "DELETE" and path == "/fapi/v1/order":
            order = self._find(p)
            if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
                return 400, {"code": -2011, "msg": "Unknown order sent."}
            order.status = "CANCELED"
            order.pending_fill_price = None
            return 200, order.record()
        if method == "GET" and path == "/fapi/v1/positionSide/dual":
            return 200, {"dualSidePosition": self.hedge_mode}
        if path == "/fapi/v1/ticker/price":
            symbol = p.get("symbol", "")
            if symbol not in self.prices:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            return 200, {"symbol": symbol, "price": repr(self.prices[symbol])}
        if method == "DELETE" and path == "/fapi/v1/allOpenOrders":
            for order in self.orders.values():
                if order.symbol == p.get("symbol") and order.status in ("NEW", "PARTIALLY_FILLED"):
                    order.status = "CANCELED"
            return 200, {"code": 200, "msg": "The operation of cancel all open order is done."}
        if method == "GET" and path == "/fapi/v1/openOrders":
            return 200, [
                o.record()
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and p.get("symbol") in (None, o.symbol)
            ]
        if method == "POST" and path == "/fapi/v1/algoOrder":
            return self._new_algo(p, fault)
        if method == "GET" and path == "/fapi/v1/openAlgoOrders":
            return 200, [
                a.record()
                for a in self.algos.values()
                if a.status == "NEW" and p.get("symbol") in (None, a.symbol)
            ]
        if method == "DELETE" and path == "/fapi/v1/algoOrder":
            for algo in self.algos.values():
                if algo.status == "NEW" and (
                    algo.cid == p.get("clientAlgoId") or str(algo.algo_id) == p.get("algoId")
                ):
                    algo.status = "CANCELED"
                    return 200, {"algoId": algo.algo_id, "code": "200", "msg": "success"}
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        if method == "GET" and path == "/fapi/v2/positionRisk":
            return 200, [
                {
                    "symbol": s,
                    "positionAmt": str(q),
                    "entryPrice": str(self.entry_prices.get(s, Decimal(0))),
                    "markPrice": repr(self.prices.get(s, 0.0)),
                    "positionSide": "BOTH",
                }
                for s, q in self.positions.items()
                if p.get("symbol") in (None, s)
            ]
        if method == "GET" and path == "/fapi/v1/userTrades":
            return 200, [
                t
                for t in self.trades
                if t["symbol"] == p.get("symbol")
                and ("orderId" not in p or str(t["orderId"]) == p["orderId"])
                and int(t["time"]) >= int(p.get("startTime", "0"))
            ]
        return 404, {"code": -1, "msg": "Not found."}


def exchange_info(prices: dict[str, float]) -> dict[str, Any]:
    return {
        "symbols": [
            {
                "symbol": symbol,
                "status": "TRADING",
                "contractType": "PERPETUAL",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": str(TICK)},
                    {"filterType": "LOT_SIZE", "stepSize": str(STEP), "minQty": str(STEP)},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": str(STEP), "minQty": str(STEP)},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"},
                ],
            }
            for symbol in prices
        ]
    }


def garble(body: Any, fault: str) -> Any:
    """The answer with one field spoilt ("garble:F", "garble:F=TEXT") or left out
    ("missing:F"), in the body or in each row of a list."""
    kind, _, spec = fault.partition(":")
    name, has_text, text = spec.partition("=")
    rows = body if isinstance(body, list) else [body]
    for row in rows:
        if isinstance(row, dict) and name in row:
            if kind == "missing":
                del row[name]
            else:
                row[name] = text if has_text else "abc"
    return body


SIGNED_FREE = ("/fapi/v1/time", "/fapi/v1/exchangeInfo", "/fapi/v1/ticker/price")


def _handler(ex: FakeUsdmExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            params = {k: v for k, v in pairs if k != "signature"}
            with ex.lock:
                ex.log.append((method, parts.path, params))
                queue = ex.faults.get(f"{method} {parts.path}") or ex.faults.get(parts.path)
                fault = queue.pop(0) if queue else None
            if fault in ("429", "418"):
                self._json(
                    int(fault),
                    {"code": -1003, "msg": "Too many requests."},
                    retry_after=str(ex.retry_after_s),
                )
                return
            if fault == "500":
                self._json(500, {"code": -1000, "msg": "An unknown error occurred."})
                return
            if fault == "drop":
                self._drop()
                return
            if fault == "unseen":  # taken, not yet recorded where look-ups read
                self._json(400, {"code": -2013, "msg": "Order does not exist."})
                return
            if parts.path not in SIGNED_FREE:
                problem = self._auth(parts.query, params)
                if problem is not None:
                    self._json(*problem)
                    return
            with ex.lock:
                status, body = ex.handle(method, parts.path, params, fault)
            if fault == "lost":
                self._drop()  # done on the exchange, the answer never arrives
                return
            if fault is not None and fault.startswith(("garble:", "missing:")):
                body = garble(body, fault)
            self._json(status, body)

        def _auth(self, query: str, params: dict[str, str]) -> tuple[int, Any] | None:
            if self.headers.get("X-MBX-APIKEY") != API_KEY:
                return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions."}
            signed, _, signature = query.rpartition("&signature=")
            good = hmac.new(API_SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, good):
                return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
            try:
                stamp = int(params["timestamp"])
                window = int(params.get("recvWindow", "5000"))
            except (KeyError, ValueError):
                return 400, {"code": -1102, "msg": "Mandatory parameter timestamp missing."}
            server = ex.server_ms()
            if stamp > server + 1000 or server - stamp > window:
                return 400, {"code": -1021, "msg": "Timestamp outside of the recvWindow."}
            return None

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.close()

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _json(self, status: int, body: object, retry_after: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def usdm_exchange(exchange: FakeUsdmExchange) -> Iterator[FakeUsdmExchange]:
    """Serve on 127.0.0.1 (a free port) for the life of the block; `exchange.url` is set."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(exchange))
    httpd.daemon_threads = True
    exchange.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield exchange
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
