"""Accuracy and speed of our Hurst estimator against the `hurst` and `nolds` packages.

Not a test: a measurement. Every estimator sees the same windows of exact fractional
Gaussian noise (Davies-Harte, ``tests/fgn.py``), n = 100 points each, as the trading
core sees 100 log returns. Prints, per true H: mean bias, standard deviation, the share
of windows put in the right regime (0.3/0.4 NOISE, 0.5 RANDOM, 0.6/0.7 TRUE_TREND) and
microseconds per window; then pooled accuracy and the speed ratio of ours (batched)
against the faster of the two packages.

What each peer is fed:
- ``hurst.compute_Hc(w, kind="change", simplified=True)``: the 100 returns themselves.
  ``kind="change"`` means "the series is increments", so it cumulates them into the walk
  internally; 100 points is exactly its minimum length, so no padding or extra history.
- ``nolds.hurst_rs(w, fit="poly")``: the same 100 returns. nolds' default ``fit="RANSAC"``
  needs scikit-learn; without it nolds warns and falls back to "poly" on every call, so
  we ask for "poly" directly (same numbers, no warning flood).

    python bench/hurst_accuracy.py                 # the table (about 40 s)
    python bench/hurst_accuracy.py --windows 500   # quicker, noisier
    python bench/hurst_accuracy.py --band          # re-measure the +-band tables in core/hurst.py
    python bench/hurst_accuracy.py --ar1           # what short memory alone reads as
    python bench/hurst_accuracy.py --flips         # label changes, raw vs 5-bar confirmed
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy loads: the peers run on one core, so do we.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib.util
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

import numpy as np

from bigalpha_tui.core.hurst import HurstTracker, classify, hurst_exponent, hurst_exponents
from bigalpha_tui.core.types import Regime

TRUE_H = (0.3, 0.4, 0.5, 0.6, 0.7)
EXPECTED = {
    0.3: Regime.NOISE,
    0.4: Regime.NOISE,
    0.5: Regime.RANDOM,
    0.6: Regime.TRUE_TREND,
    0.7: Regime.TRUE_TREND,
}
WINDOW = 100
BAND_SIZES = (32, 50, 100, 200, 400, 800)

Estimator = Callable[[np.ndarray], np.ndarray]


def load_fgn() -> ModuleType:
    """tests/fgn.py by path, so the bench works whatever the tests folder's packaging."""
    path = Path(__file__).resolve().parents[1] / "tests" / "fgn.py"
    spec = importlib.util.spec_from_file_location("bench_fgn", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the fGn generator from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_window(fn: Callable[[np.ndarray], float]) -> Estimator:
    def run(windows: np.ndarray) -> np.ndarray:
        return np.array([fn(row) for row in windows], dtype=np.float64)

    return run


def import_nolds() -> ModuleType:
    """nolds 0.6.2 reads its bundled data sets with pkg_resources at import time.

    setuptools >= 81 no longer ships pkg_resources; when it is missing we register a
    stand-in for the one function nolds uses, ``resource_stream``: like the original, it
    opens ``name`` relative to the folder of the module named ``package``.
    """
    if importlib.util.find_spec("pkg_resources") is None:
        stand_in = ModuleType("pkg_resources")

        def resource_stream(package: str, name: str) -> BinaryIO:
            module_file = sys.modules[package].__file__
            if module_file is None:
                raise FileNotFoundError(f"{package} has no file to read {name} beside")
            return (Path(module_file).parent / name).open("rb")

        stand_in.resource_stream = resource_stream  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = stand_in
        print("note: pkg_resources missing (setuptools >= 81); nolds given a stand-in")
    import nolds

    return nolds


def estimators() -> dict[str, Estimator]:
    import hurst

    nolds = import_nolds()

    return {
        "ours batched (whittle)": lambda w: hurst_exponents(w, "whittle"),
        "ours single-window": per_window(lambda r: hurst_exponent(r, "whittle")),
        "ours rs_al (batched)": lambda w: hurst_exponents(w, "rs_al"),
        "hurst.compute_Hc": per_window(
            lambda r: float(hurst.compute_Hc(r, kind="change", simplified=True)[0])
        ),
        "nolds.hurst_rs": per_window(lambda r: float(nolds.hurst_rs(r, fit="poly"))),
    }


def timed(fn: Estimator, windows: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    """Estimates and the best wall time per window in microseconds over ``repeats`` runs."""
    best = math.inf
    out = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(windows)
        best = min(best, time.perf_counter() - start)
    return out, best / len(windows) * 1e6


def accuracy_table(count: int, seed: int) -> None:
    fgn = load_fgn()
    rng = np.random.default_rng(seed)
    data = {h: fgn.fgn(h, WINDOW, count, rng) for h in TRUE_H}
    contenders = estimators()
    print(f"exact fGn (Davies-Harte), n = {WINDOW}, {count} windows per H, seed {seed}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.2f} at start")
    header = f"{'estimator':<24}{'H':>5}{'bias':>9}{'std':>8}{'regime ok':>11}{'us/window':>11}"
    print(header)
    print("-" * len(header))
    summary: dict[str, tuple[float, float, float]] = {}
    results: dict[str, np.ndarray] = {}
    for name, fn in contenders.items():
        fast = name.startswith("ours") and "single" not in name
        hits, micros, worst_bias = 0.0, 0.0, 0.0
        pieces = []
        for h in TRUE_H:
            est, us = timed(fn, data[h], repeats=7 if fast else 1)
            pieces.append(est)
            right = np.mean([classify(float(e)) is EXPECTED[h] for e in est])
            bias = float(np.nanmean(est) - h)
            hits += right
            micros += us
            worst_bias = max(worst_bias, abs(bias))
            print(
                f"{name:<24}{h:>5.1f}{bias:>+9.4f}{np.nanstd(est):>8.4f}{right:>10.1%}{us:>11.1f}"
            )
        results[name] = np.concatenate(pieces)
        summary[name] = (hits / len(TRUE_H), worst_bias, micros / len(TRUE_H))
        print()
    print(f"{'estimator':<24}{'pooled regime ok':>18}{'max |bias|':>12}{'us/window':>11}")
    for name, (acc, bias, us) in summary.items():
        print(f"{name:<24}{acc:>17.1%}{bias:>12.4f}{us:>11.1f}")
    gap = np.abs(results["ours batched (whittle)"] - results["ours single-window"]).max()
    print(f"\nours batched vs ours single-window: max |difference| {gap:.1e}")
    peer = min(summary["hurst.compute_Hc"][2], summary["nolds.hurst_rs"][2])
    ratio = peer / summary["ours batched (whittle)"][2]
    print(f"speed: ours batched is {ratio:.0f}x faster per window than the faster peer")


def band_table(count: int, seed: int) -> None:
    """Std of each method on exact fGn per window length, root-mean-square over H."""
    fgn = load_fgn()
    rng = np.random.default_rng(seed)
    print(f"+-band: std of H on exact fGn, {count} windows per (H, n), seed {seed}")
    print(f"{'n':>5}{'method':>9}" + "".join(f"{'H=' + str(h):>9}" for h in TRUE_H) + f"{'rms':>9}")
    for n in BAND_SIZES:
        windows = {h: fgn.fgn(h, n, count, rng) for h in TRUE_H}
        for method in ("whittle", "rs_al"):
            stds = [float(np.nanstd(hurst_exponents(windows[h], method))) for h in TRUE_H]
            rms = math.sqrt(sum(s * s for s in stds) / len(stds))
            cells = "".join(f"{s:>9.4f}" for s in stds)
            print(f"{n:>5}{method:>9}{cells}{rms:>9.4f}")


def short_memory_table(count: int, seed: int) -> None:
    """What H and regime do short-memory AR(1) returns get? (no long memory at all)."""
    rng = np.random.default_rng(seed)
    burn_in = 500
    print(f"AR(1) returns r_t = phi r_(t-1) + e_t, n = {WINDOW}, {count} windows, seed {seed}")
    print(f"{'phi':>6}{'mean H':>9}{'NOISE':>9}{'RANDOM':>9}{'TRUE_TREND':>12}")
    for phi in (-0.2, -0.1, 0.0, 0.1, 0.2):
        shocks = rng.standard_normal((count, burn_in + WINDOW))
        path = np.zeros_like(shocks)
        for t in range(1, path.shape[1]):
            path[:, t] = phi * path[:, t - 1] + shocks[:, t]
        estimates = hurst_exponents(path[:, -WINDOW:])
        labels = [classify(float(e)) for e in estimates]
        shares = [labels.count(r) / count for r in (Regime.NOISE, Regime.RANDOM, Regime.TRUE_TREND)]
        print(
            f"{phi:>+6.1f}{estimates.mean():>9.3f}"
            + "".join(f"{x:>9.1%}" for x in shares[:2])
            + f"{shares[2]:>12.1%}"
        )


def label_flip_table(bars: int, seed: int) -> None:
    """How often raw and published regimes change on prices whose true H never changes."""
    fgn = load_fgn()
    rng = np.random.default_rng(seed)
    print(f"regime changes on one fGn price path per H, {bars} bars after warm-up, seed {seed}")
    print(f"{'H':>5}{'raw: bars/change':>18}{'published (5 bars): bars/change':>33}")
    for h in TRUE_H:
        closes = 100.0 * np.exp(np.cumsum(0.001 * fgn.fgn(h, bars + WINDOW, 1, rng)[0]))
        tracker = HurstTracker()
        readings = [tracker.update(float(c)) for c in closes][WINDOW:]
        raw = sum(a.raw_regime != b.raw_regime for a, b in itertools.pairwise(readings))
        published = sum(a.regime != b.regime for a, b in itertools.pairwise(readings))
        print(f"{h:>5.1f}{bars / max(raw, 1):>18.1f}{bars / max(published, 1):>33.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--windows",
        type=int,
        help="windows per true H (default 2000; 20000 with --band; bars with --flips: 10000)",
    )
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--band", action="store_true", help="measure the +-band tables")
    parser.add_argument(
        "--flips", action="store_true", help="raw vs confirmed regime changes at a fixed H"
    )
    parser.add_argument(
        "--ar1", action="store_true", help="H of short-memory AR(1) returns (no long memory)"
    )
    args = parser.parse_args(argv)
    count = args.windows or (20000 if args.band else 2000)
    if count < 10:
        parser.error("--windows must be at least 10")
    if args.band:
        band_table(count, args.seed)
    elif args.flips:
        label_flip_table(args.windows or 10000, args.seed)
    elif args.ar1:
        short_memory_table(count, args.seed)
    else:
        accuracy_table(count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
