"""`bigalpha-tui status`: what the feature store holds, read without changing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.store import Store
from bigalpha_tui.headless import fmt_h, iso


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
        "symbols": symbols,
        "files": files,
        "warnings": [f"{w.file}: {w.message}" for w in store.warnings],
    }


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
    lines.append(f"source: {status['source'] or '—'}   last bar: {status['last_bar'] or '—'} UTC")
    if status["symbols"]:
        lines.append(f"{'symbol':<10} {'bars':>7} {'H':>5}  regime")
        for symbol, info in status["symbols"].items():
            bars = info["bars_seen"] if info["bars_seen"] is not None else "—"
            lines.append(f"{symbol:<10} {bars:>7} {fmt_h(info['h']):>5}  {info['regime'] or '—'}")
    for warning in status["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
