"""Orders on the exchange from the cockpit: flatten behind two questions, the halt and its
differences one key away with the acknowledgement, live's typed word, and the same from an
attached cockpit. Real cores routed to the fake USD-M exchange on 127.0.0.1, or the frozen
fixture snapshot for the pictures; no network."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange
from snapshot_fixtures import START_S, cockpit, fixture_core, fixture_snapshot, wall_clock
from test_app import screen_rows
from test_execution_loop import ENTRY, bot
from trading_helpers import SYMBOL, T0_MS

from bigalpha_tui.app import CockpitApp
from bigalpha_tui.attach import AttachApp, RemoteCore
from bigalpha_tui.control import ControlServer
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config, replace
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.exchange_reconcile import LEFT_ALONE
from bigalpha_tui.core.execution_loop import ExecutionLoop
from bigalpha_tui.core.snapshot import (
    AccountOrderView,
    AccountPositionView,
    ExecutionView,
    Snapshot,
)
from bigalpha_tui.screens.confirm import ConfirmDialog, SecondConfirm
from bigalpha_tui.screens.execution import (
    ExecutionScreen,
    LiveAsk,
    LiveConfirmScreen,
    live_ask_for,
)
from bigalpha_tui.screens.help import HelpScreen

ETH_DIFF = f"ETHUSDT: exchange holds +0.5, the book nothing ({LEFT_ALONE})"
DOT_DIFF = "DOTUSDT: exchange holds -150, the book nothing"


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0_MS / 1000)


@pytest.fixture
def exchange(clock: SimClock) -> Iterator[FakeUsdmExchange]:
    with usdm_exchange(FakeUsdmExchange(now=clock.now, prices={SYMBOL: 100.0})) as ex:
        yield ex


def with_eth(exchange: FakeUsdmExchange, qty: str) -> None:
    """A position on the account that the book does not hold."""
    with exchange.lock:
        exchange.positions["ETHUSDT"] = Decimal(qty)
        exchange.prices["ETHUSDT"] = 3000.0


async def run(core: Core, execution: ExecutionLoop) -> None:
    """The bot to the end of its bars (as test_execution_loop.run, inside a running loop)."""
    try:
        await core.run()
    finally:
        await execution.broker.client.aclose()


async def idle_bot_with_a_position(
    tmp: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> tuple[Core, ExecutionLoop]:
    """A testnet bot that opened BTCUSDT (its stop resting on the exchange), then restarted
    and idle, with ETHUSDT -0.5 on the account that the book does not hold."""
    core, execution, _ = bot(tmp, clock, exchange, [*ENTRY])
    await run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    with_eth(exchange, "-0.5")
    core, execution, _ = bot(tmp, clock, exchange, [])
    return core, execution


def console_text(app: CockpitApp) -> str:
    """What the Statics of the top screen show (rich tables included), as plain text."""
    import io

    from rich.console import Console
    from textual.widgets import Static

    console = Console(width=200, file=io.StringIO(), record=True)
    for widget in app.screen.query(Static):
        rendered = widget.render()
        console.print(getattr(rendered, "_renderable", rendered))
    return console.export_text()


screen_text = console_text


# -- flatten ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_flatten_asks_twice_and_a_no_at_either_leaves_everything(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = await idle_bot_with_a_position(tmp_path, clock, exchange)
    app = cockpit(core)
    async with app.run_test(size=(120, 40)) as pilot:
        await execution.reconcile_now()  # the account as the cockpit will show it
        app.refresh_view()
        assert app.check_action("flatten", (1,)) is True  # in the footer: orders on an exchange
        await pilot.press("F")
        assert isinstance(app.screen, ConfirmDialog)
        assert exchange.url in screen_text(app)
        await pilot.press("n")  # no at the first question
        assert app.screen is app.main
        await pilot.press("F", "y")
        assert isinstance(app.screen, SecondConfirm)
        shown = console_text(app)
        assert "BTCUSDT" in shown and "LONG 1" in shown  # the book's position and its size
        assert "≈ $100.00" in shown  # its notional at the mark
        assert "ETHUSDT" in shown and "-0.5" in shown and "not in the book" in shown
        assert "STOP_MARKET SELL all @ 99" in shown  # the resting stop that will be cancelled
        await pilot.press("y")  # y does not answer the last question
        assert isinstance(app.screen, SecondConfirm)
        await pilot.press("escape")  # no at the second question
        assert app.screen is app.main
        await execution.drain()
        assert not core.paused and execution.outbox == []
        assert exchange.position(SYMBOL) == pytest.approx(1.0)
        assert exchange.position("ETHUSDT") == pytest.approx(-0.5)
        assert len(exchange.open_algos()) == 1
        await pilot.press("F", "y", "F")  # asked twice, confirmed twice
        assert app.screen is app.main and core.paused
        await execution.drain()
        assert exchange.position(SYMBOL) == 0.0 and exchange.position("ETHUSDT") == 0.0
        assert exchange.open_algos() == []
        assert any("flatten: entries paused" in m for m, _ in app.toasts)
        shown = app.snapshot_source().execution
        assert [p.symbol for p in shown.account_positions] == [SYMBOL, "ETHUSDT"]  # as read
        await execution.before_bar()  # the account is read again after a flatten
        shown = app.snapshot_source().execution
        assert shown.account_positions == () and shown.account_orders == ()
        await execution.broker.client.aclose()


@pytest.mark.anyio
async def test_flatten_on_paper_is_off_the_footer_but_asks_and_closes(tmp_path: Path) -> None:
    core = fixture_core(tmp_path)
    app = cockpit(core, fixture_snapshot())
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.check_action("flatten", (1,)) is False  # the footer's twin: hidden
        assert app.check_action("flatten", (0,)) is True  # the key still answers
        await pilot.press("F", "y")
        assert isinstance(app.screen, SecondConfirm)
        shown = console_text(app)
        assert "Positions of the book: 3" in shown and "Paper: no exchange" in shown
        await pilot.press("n")
        assert app.screen is app.main and not core.paused
        await pilot.press("shift+f", "y", "shift+f")  # as a kitty-protocol terminal sends it
        assert core.paused


@pytest.mark.anyio
async def test_a_read_only_cockpit_has_no_flatten_and_no_acknowledge(tmp_path: Path) -> None:
    app = cockpit(fixture_core(tmp_path, read_only=True), halted_snapshot())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("F")
        assert app.screen is app.main  # refused, and hidden from the footer
        assert app.check_action("flatten", (1,)) is False
        await pilot.press("h")  # the halt can be read
        assert isinstance(app.screen, ExecutionScreen)
        assert DOT_DIFF in screen_text(app)
        assert "ctl ack-mismatch" in screen_text(app) and "(a)" not in screen_text(app)
        assert app.screen.check_action("acknowledge", ()) is False
        await pilot.press("a")
        assert isinstance(app.screen, ExecutionScreen)  # no question: nothing to send
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {desc: enabled for _, desc, _, enabled in app.binding_rows()}
        assert rows["Flatten"] is False and rows["Halted"] is True


# -- the halt and its differences --------------------------------------------------------------


@pytest.mark.anyio
async def test_the_halt_in_full_and_acknowledged_from_the_cockpit(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    with_eth(exchange, "0.5")
    core, execution, _ = bot(tmp_path, clock, exchange, ENTRY)
    await run(core, execution)  # the reconciliation at start halts entries on ETHUSDT
    core, execution, _ = bot(tmp_path, clock, exchange, [])  # restarted: still halted
    app = cockpit(core)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.check_action("execution", (1,)) is True  # `h Halted` in the footer
        await pilot.press("h")
        assert isinstance(app.screen, ExecutionScreen)
        footer = " ".join(screen_rows(app)[-1].split())  # the dialog's keys, not the main's
        assert "esc Back" in footer and "a Acknowledge" in footer and "Pause" not in footer
        text = screen_text(app)
        assert f"Difference 1  {ETH_DIFF}" in " ".join(console_text(app).split("│"))
        assert "ctl ack-mismatch" in " ".join(text.split())  # the halt reason, in full
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # not acknowledged: still halted
        assert isinstance(app.screen, ExecutionScreen)
        assert execution.mismatches == [ETH_DIFF]
        await pilot.press("a", "y")
        assert execution.mismatches == [] and core.entries_halted_reason() is None
        assert isinstance(app.screen, ExecutionScreen)
        app.refresh_view()
        await pilot.pause()
        assert "open: nothing halts them" in console_text(app)
        assert app.screen.check_action("acknowledge", ()) is False
        await pilot.press("escape")
        assert app.check_action("execution", (1,)) is False  # off the footer again
        await execution.broker.client.aclose()


@pytest.mark.anyio
async def test_a_position_without_an_exchange_stop_is_shown_loudly_and_cannot_be_acknowledged(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.retry_after_s = 3600  # the stop and its close meet a ban of an hour
    exchange.inject("POST /fapi/v1/algoOrder", "418")
    core, execution, _ = bot(tmp_path, clock, exchange, ENTRY)
    await run(core, execution)
    core, execution, _ = bot(tmp_path, clock, exchange, [])  # restarted: still listed
    app = cockpit(core)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.check_action("execution", (1,)) is True  # `h Halted` in the footer
        await pilot.press("h")
        assert isinstance(app.screen, ExecutionScreen)
        text = " ".join(console_text(app).split())
        assert "POSITION WITHOUT AN EXCHANGE STOP: BTCUSDT: the stop could not be placed" in text
        assert app.screen.check_action("acknowledge", ()) is False  # not a difference to ack
        await pilot.press("escape")
        await execution.broker.client.aclose()


# -- from an attached cockpit ------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_attached_cockpit_acknowledges_and_flattens_on_the_bot(
    short_tmp: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = await idle_bot_with_a_position(short_tmp, clock, exchange)
    await execution.reconcile_now()  # ETHUSDT -0.5: a difference, entries halt
    assert execution.mismatches == [
        f"ETHUSDT: exchange holds -0.5, the book nothing ({LEFT_ALONE})"
    ]
    remote = RemoteCore(short_tmp, core.config, retry_s=0.05)
    app = AttachApp(remote, wall_clock=wall_clock)
    server = ControlServer(core, short_tmp, stream_period_s=0.05)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        async with app.run_test(size=(120, 40)) as pilot:
            with anyio.fail_after(5):
                while not (remote.connected and app.snapshot_source().execution.mismatches):
                    await anyio.sleep(0.02)
            await pilot.press("h", "a", "y")
            with anyio.fail_after(5):
                while execution.mismatches:
                    await anyio.sleep(0.02)
            await pilot.press("escape")
            await pilot.press("F", "y")
            assert isinstance(app.screen, SecondConfirm)
            assert "not in the book" in console_text(app)  # the bot's account, streamed
            await pilot.press("F")
            with anyio.fail_after(5):
                while not core.paused:
                    await anyio.sleep(0.02)
            await execution.drain()
            assert exchange.position(SYMBOL) == 0.0 and exchange.position("ETHUSDT") == 0.0
        tg.cancel_scope.cancel()
    await execution.broker.client.aclose()


# -- live: the typed word ----------------------------------------------------------------------

ASK = LiveAsk("https://fapi.binance.com", ("BTCUSDT", "ETHUSDT"), "env", 1000.0, 100.0)


def live_app(tmp: Path, started: list[int]) -> CockpitApp:
    app = CockpitApp(fixture_core(tmp), run_core=True, wall_clock=wall_clock, live_ask=ASK)
    app.animation_level = "none"
    app._start_core = lambda: started.append(1)  # type: ignore[method-assign]
    return app


@pytest.mark.anyio
async def test_live_starts_only_after_the_word_is_typed(tmp_path: Path) -> None:
    started: list[int] = []
    app = live_app(tmp_path, started)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LiveConfirmScreen)
        assert "fapi.binance.com" in console_text(app) and "1000 USDT" in console_text(app)
        footer = " ".join(screen_rows(app)[-1].split())
        assert "esc Cancel" in footer and "Pause" not in footer, footer
        await pilot.press("F")  # no steering while asked: the keys go to the word
        await pilot.pause()
        assert started == [] and not app.core.paused
        await pilot.press("backspace", *"LIVE", "enter")
        await pilot.pause()
        assert app.screen is app.main and started == [1]
        assert app.return_code is None
        assert "the operator typed LIVE" in app.core.snapshot().events[0].message


@pytest.mark.anyio
@pytest.mark.parametrize("keys", [[*"live", "enter"], ["escape"], ["enter"]])
async def test_a_wrong_word_or_esc_ends_a_live_cockpit_with_status_2(
    tmp_path: Path, keys: list[str]
) -> None:
    started: list[int] = []
    app = live_app(tmp_path, started)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
    assert app.return_code == 2 and started == []
    assert app.fatal_message.startswith("live trading not confirmed")
    assert "\n" not in app.fatal_message


def test_the_live_ask_shows_the_account_and_paper_or_testnet_ask_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)
    assert live_ask_for(Config()) is None
    assert live_ask_for(replace(Config(), "execution", mode="testnet")) is None
    ask = live_ask_for(replace(Config(), "execution", mode="live", max_notional_usd=250.0))
    assert ask is not None and ask.base_url == "https://fapi.binance.com"
    assert ask.keys_from == "env" and ask.max_notional_usd == 250.0
    assert API_KEY not in repr(ask) and API_SECRET not in repr(ask)
    monkeypatch.delenv("BINANCE_API_SECRET")
    with pytest.raises(ConfigError, match="needs API keys"):
        live_ask_for(replace(Config(), "execution", mode="live"))


# -- pictures ----------------------------------------------------------------------------------

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


def halted_snapshot() -> Snapshot:
    """The fixture snapshot on the testnet, halted on a difference, the account as read."""
    now = START_S + 4 * 3600
    snapshot = fixture_snapshot()
    execution = ExecutionView(
        mode="testnet",
        base_url="https://testnet.binancefuture.com",
        mismatches=(DOT_DIFF, "AVAXUSDT: book holds -5.27, exchange -3.1"),
        account_read_s=now - 120,
        account_positions=(
            AccountPositionView("AVAXUSDT", -3.1, 14.331),
            AccountPositionView("BTCUSDT", 0.0026, 94_120.5),
            AccountPositionView("DOTUSDT", -150.0, 2.31),
            AccountPositionView("ETHUSDT", 0.0312, 3_210.10),
        ),
        account_orders=(
            AccountOrderView(
                "BTCUSDT",
                "ba-3f1c2d9e8a7b6c5d4e3f2a1b-S",
                "STOP_MARKET",
                "SELL",
                0.0,
                93_179.3,
                True,
            ),
            AccountOrderView("DOTUSDT", "web_8812", "LIMIT", "BUY", 150.0, 2.05, False),
        ),
    )
    reason = (
        "exchange and book differ: " + "; ".join(execution.mismatches) + ": new entries halted"
        " until `ctl ack-mismatch`"
    )
    return dataclasses.replace(snapshot, execution=execution, entries_halted_reason=reason)


@SIZES
def test_flatten_confirmation_picture(
    snap_compare: object, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = cockpit(fixture_core(tmp_path), halted_snapshot())
    assert snap_compare(app, terminal_size=size, press=["F", "y"])  # type: ignore[operator]


@SIZES
def test_mismatch_detail_picture(
    snap_compare: object, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = cockpit(fixture_core(tmp_path), halted_snapshot())
    assert snap_compare(app, terminal_size=size, press=["h"])  # type: ignore[operator]


def footer_text(app: CockpitApp) -> str:
    """The footer's row as the terminal shows it."""
    screen = app.screen
    strips = screen._compositor.render_strips()
    return "".join(segment.text for segment in strips[-1])


@pytest.mark.anyio
@pytest.mark.parametrize("width", [60, 80, 100, 120])
async def test_quit_and_help_stay_in_the_footer_on_an_exchange_halted(
    tmp_path: Path, width: int
) -> None:
    """F and h join the footer on an exchange while halted, but never push `? Help` and
    `q Quit` off it: below the width where all fit, they stay in help and the palette."""
    app = cockpit(fixture_core(tmp_path), halted_snapshot())
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        footer = footer_text(app)
        assert "Help" in footer and "Quit" in footer, footer
        if width >= 120:
            assert "Flatten" in footer and "Halted" in footer, footer
