"""`bigalpha-tui status`: what the feature store holds, read without changing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.learning_store import learning_status
from bigalpha_tui.core.ledger import trading_status
from bigalpha_tui.core.store import Store
from bigalpha_tui.headless import fmt_h, iso

EXECUTION_STATE = "execution_state.json"  # core/execution_loop.py (not imported: httpx)


def read_status(data_dir: Path) -> dict[str, Any]:
    """A JSON-ready summary; never moves or rewrites a file (read-only store)."""
    store = Store(data_dir, read_only=True)
    engine = store.read_json(store_mod.ENGINE_STATE) or {}
    flow = (store.read_json(store_mod.WHALE_FLOW) or {}).get("symbols", {})
    hurst = (store.read_json(store_mod.HURST_CACHE) or {}).get("symbols", {})
    symbols: dict[str, Any] = {}
    for symbol in sorted(set(flow) | set(hurst)):
        h_state = hurst.get(symbol, {})
        symbols[symbol] = {
            "bars_seen": flow.get(symbol, {}).get("bars_seen"),
            "h": _last_h(h_state),
            "regime": h_state.get("published", h_state.get("regime")),
        }
    files = {
        name: (data_dir / name).exists() for name in store_mod.JSON_FILES + store_mod.JSONL_FILES
    }
    return {
        "data_dir": str(data_dir),
        "exists": data_dir.exists(),
        "last_bar_ms": engine.get("last_bar_ms"),
        "last_bar": iso(engine["last_bar_ms"] / 1000) if engine.get("last_bar_ms") else None,
        "source": engine.get("source"),
        "paused": engine.get("paused") is True,
        "guards_off": guards_off(engine),
        "symbols": symbols,
        "learning": learning_status(store),
        "trading": trading_status(store.read_json(store_mod.POSITIONS)),
        "execution": execution_status(store.read_json(EXECUTION_STATE)),
        "files": files,
        "warnings": [f"{w.file}: {w.message}" for w in store.warnings],
    }


def execution_status(doc: dict[str, Any] | None) -> dict[str, Any]:
    """Testnet/live: orders not yet sent, and differences with the exchange that halt new
    entries until `ctl ack-mismatch` (empty for paper: no such file)."""
    if doc is None:
        return {}
    outbox = doc.get("outbox")
    mismatches = doc.get("mismatches")
    unprotected = doc.get("unprotected")
    return {
        "orders_waiting": len(outbox) if isinstance(outbox, list) else 0,
        "mismatches": [str(m) for m in mismatches] if isinstance(mismatches, list) else [],
        "unprotected": (
            [str(line) for line in unprotected.values()] if isinstance(unprotected, dict) else []
        ),
    }


def guards_off(engine: dict[str, Any]) -> list[str]:
    """The guards the operator switched off, by name (engine_state's `guards_enabled`)."""
    enabled = engine.get("guards_enabled")
    if not isinstance(enabled, dict):
        return []
    return sorted(name for name, on in enabled.items() if on is False)


def _last_h(state: dict[str, Any]) -> float | None:
    history = state.get("history") or []
    for value in reversed(history):
        if isinstance(value, int | float):
            return float(value)
    return None


def render_status(status: dict[str, Any]) -> str:
    lines = [f"data folder: {status['data_dir']}"]
    if not status["exists"]:
        lines.append("  (empty: nothing has run with this data folder yet)")
        return "\n".join(lines)
    lines.append(steering_line(status))
    lines.append(f"source: {status['source'] or '—'}   last bar: {status['last_bar'] or '—'} UTC")
    if status["symbols"]:
        lines.append(f"{'symbol':<10} {'bars':>7} {'H':>5}  regime")
        for symbol, info in status["symbols"].items():
            bars = info["bars_seen"] if info["bars_seen"] is not None else "—"
            lines.append(f"{symbol:<10} {bars:>7} {fmt_h(info['h']):>5}  {info['regime'] or '—'}")
    lines.extend(render_trading(status.get("trading") or {}))
    lines.extend(render_execution(status.get("execution") or {}))
    lines.extend(render_learning(status.get("learning") or {}))
    for warning in status["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def steering_line(status: dict[str, Any]) -> str:
    """What the operator steers: whether new entries are paused, which guards are off."""
    entries = "PAUSED (exits keep running)" if status["paused"] else "on"
    off = status["guards_off"]
    guards = f"guards off: {', '.join(off)}" if off else "guards: all on"
    return f"entries: {entries}   {guards}"


def render_execution(execution: dict[str, Any]) -> list[str]:
    if not execution:
        return []
    lines = [f"exchange: {execution['orders_waiting']} order(s) not yet sent"]
    for line in execution.get("unprotected", []):
        lines.append(f"  POSITION WITHOUT AN EXCHANGE STOP (entries halted): {line}")
    for mismatch in execution["mismatches"]:
        lines.append(f"  ENTRIES HALTED: {mismatch} (ctl ack-mismatch once looked at)")
    return lines


def render_learning(learning: dict[str, Any]) -> list[str]:
    """Last cycle and next due time; symbols on probation or with a raised buffer."""
    if "error" in learning:
        return [f"learning: {learning['error']}"]
    last, due = learning.get("last_cycle_s"), learning.get("next_due_s")
    lines = [
        f"learning: last cycle {iso(last)} ({learning.get('cycles', 0)} so far),"
        f" next due {iso(due)}{' UTC' if due is not None else ''}"
    ]
    if learning.get("last_summary"):
        lines.append(f"  {learning['last_summary']}")
    for symbol, info in (learning.get("symbols") or {}).items():
        if info["state"] != "ACTIVE":
            lines.append(
                f"  {symbol:<10} {info['state']} since {info['state_changed'] or '—'}:"
                f" {info['state_reason']}"
            )
    buffers = [
        f"{symbol} {info['slippage_buffer_bps']:g}"
        for symbol, info in (learning.get("symbols") or {}).items()
    ]
    if buffers:
        lines.append(f"  slippage buffers (bps): {', '.join(buffers)}")
    return lines


def render_trading(trading: dict[str, Any]) -> list[str]:
    """Open positions (with any force-hold deadline) and the guard report."""
    if not trading:
        return []
    lines = [
        f"positions: {len(trading['open'])} open, {trading['pending']} entry order(s) pending;"
        f" {trading['closed_count']} closed, realised {trading['realised_closed_usd']:+.2f} USD"
    ]
    for p in trading["open"]:
        hold = p["force_hold_until_s"]
        tiers = ",".join(p["tiers_taken"]) or "no tier yet"
        lines.append(
            f"  {p['symbol']:<10} {p['side']:<5} {p['qty_open']:.6g} @ {p['entry_price']:.6g}"
            f"  entered {p['entry_regime']}  {tiers}"
            + (f"  force-hold until {iso(hold)} UTC" if hold is not None else "")
        )
    guards = [(r, g) for r, g in trading.get("guard", {}).items() if g.get("blocked")]
    if guards:
        lines.append("guards: blocked / open twins / opportunity cost (> 0 cost money)")
        for reason, g in guards:
            lines.append(
                f"  {reason:<15} {g['blocked']:>6} {g['open_twins']:>6}"
                f" {g.get('opportunity_cost_usd', 0.0):>+10.2f} USD"
            )
    return lines
