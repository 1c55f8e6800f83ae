"""`bigalpha-tui attach`: snapshots streamed over the control socket, the cockpit fed by them.

Every test runs a bot core (the simulator fed synchronously, as in snapshot_fixtures.py) and
its control server in the test's own event loop, on a Unix socket in a short tmp folder.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from itertools import islice
from pathlib import Path
from typing import Any

import anyio
import pytest
from snapshot_fixtures import START_S, fed_core, fixture_snapshot, wall_clock

from bigalpha_tui import attach as attach_mod
from bigalpha_tui import cli
from bigalpha_tui.attach import AttachApp, RemoteClock, RemoteCore, bot_answers, first_snapshot
from bigalpha_tui.control import ControlServer, socket_path
from bigalpha_tui.core import snapshot_codec as codec
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import CommandError
from bigalpha_tui.core.snapshot import Event, Snapshot
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.positions_table import PositionsTable
from bigalpha_tui.widgets.status_bar import StatusBar

PERIOD_S = 0.02


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    with anyio.fail_after(timeout_s):
        while not condition():
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def serving(
    bot: Core, root: Path, period_s: float = PERIOD_S
) -> AsyncIterator[ControlServer]:
    """The bot's control server, serving in the background for the block."""
    server = ControlServer(bot, root, stream_period_s=period_s)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        yield server
        tg.cancel_scope.cancel()


def status_text(app: AttachApp) -> str:
    app.refresh_view()
    rendered = app.main.query_one(StatusBar).render()
    return str(getattr(rendered, "plain", rendered))


def round_trip(snapshot: Snapshot) -> Snapshot:
    line = codec.dumps(codec.encode_fields(snapshot))
    return codec.decode_snapshot(json.loads(line))


# -- the codec ------------------------------------------------------------------------------


def test_a_full_snapshot_round_trips_through_json(tmp_path: Path) -> None:
    hand_made = fixture_snapshot()
    assert round_trip(hand_made) == hand_made
    real = fed_core(tmp_path, 60).snapshot()
    assert real.positions and real.events and real.symbols
    assert round_trip(real) == real
    assert round_trip(dataclasses.replace(real, paused=True)).paused


def test_a_delta_carries_only_what_changed_and_new_events_alone() -> None:
    before = fixture_snapshot()
    event = Event(START_S + 60, "command", "", "entries paused", {"ok": True})
    after = dataclasses.replace(before, paused=True, events=(event, *before.events[:-1]))
    old, new = codec.encode_fields(before), codec.encode_fields(after)
    assert codec.delta(old, old) is None
    change = codec.delta(old, new)
    assert change is not None
    assert change["set"] == {"paused": True}
    assert change["prepend"] == {"events": [codec.to_json(event)]}
    copy = dict(old)
    codec.apply_delta(copy, json.loads(codec.dumps(change)))
    assert codec.decode_snapshot(copy) == after


def test_a_line_that_does_not_fit_is_a_codec_error() -> None:
    fields = codec.encode_fields(fixture_snapshot())
    with pytest.raises(codec.CodecError):
        codec.decode_snapshot({**fields, "paused": "yes"})
    with pytest.raises(codec.CodecError):
        codec.decode_snapshot({**fields, "symbols": [{"symbol": "X"}]})


# -- the stream -----------------------------------------------------------------------------


def feed(core: Core, minutes: int, start_minute: int) -> None:
    """`minutes` more simulator minutes into `core`, synchronously."""
    config = core.config
    stream = simulate_minutes(
        config.source.symbols, config.source.seed, DEFAULT_START_MS, SimParams()
    )
    for minute in islice(stream, start_minute, start_minute + minutes):
        for bar in minute:
            core.process_bar(bar)


@pytest.mark.anyio
async def test_a_remote_core_follows_the_bot_and_steers_it(short_tmp: Path) -> None:
    bot = fed_core(short_tmp, 30)
    remote = RemoteCore(short_tmp, bot.config, retry_s=PERIOD_S)
    seen: list[Event] = []
    remote.observers.append(seen.append)
    server = ControlServer(bot, short_tmp, stream_period_s=PERIOD_S)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        tg.start_soon(remote.run)
        await until(lambda: remote.connected)
        assert remote.snapshot() == bot.snapshot()
        assert remote.clock.now() == bot.clock.now()
        assert remote.link() == ("ATTACHED", True) and not remote.read_only
        feed(bot, 5, 30)
        await until(lambda: remote.snapshot() == bot.snapshot())
        remote.submit(Command(CommandKind.PAUSE))
        await until(lambda: remote.snapshot().paused)
        assert bot.paused
        results = [e for e in seen if e.kind == "command"]
        assert results[-1].message.startswith("entries paused")
        assert results[-1].data["ok"] is True
        remote.stop()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_remote_release_result_names_its_symbol(short_tmp: Path) -> None:
    """The bot's reply says only "PROBATION -> ACTIVE: ..."; the toast must say which."""
    from bigalpha_tui.core.probation import SymbolStatus
    from bigalpha_tui.core.types import SymbolState

    bot = fed_core(short_tmp, 10)
    assert bot.learning is not None
    bot.learning.statuses["SOLUSDT"] = SymbolStatus("SOLUSDT", state=SymbolState.PROBATION)
    remote = RemoteCore(short_tmp, bot.config, retry_s=PERIOD_S)
    seen: list[Event] = []
    remote.observers.append(seen.append)
    async with serving(bot, short_tmp), anyio.create_task_group() as tg:
        tg.start_soon(remote.run)
        await until(lambda: remote.connected)
        remote.submit(Command(CommandKind.RELEASE, "SOLUSDT"))
        await until(lambda: any(e.kind == "command" for e in seen))
        remote.stop()
    (result,) = [e for e in seen if e.kind == "command"]
    assert result.symbol == "SOLUSDT" and result.message.startswith("PROBATION -> ACTIVE")


@pytest.mark.anyio
async def test_nothing_is_sent_while_nothing_changes(short_tmp: Path) -> None:
    bot = fed_core(short_tmp, 10)
    remote = RemoteCore(short_tmp, bot.config, retry_s=PERIOD_S)
    async with serving(bot, short_tmp), anyio.create_task_group() as tg:
        tg.start_soon(remote.run)
        await until(lambda: remote.connected)
        lines = remote.lines_received
        await anyio.sleep(10 * PERIOD_S)
        assert remote.lines_received == lines  # hello and the whole snapshot only
        bot.emit("note", "", "one event")
        await until(lambda: remote.lines_received == lines + 1)
        remote.stop()


@pytest.mark.anyio
async def test_a_stuck_cockpit_is_dropped_and_never_slows_the_bot(short_tmp: Path) -> None:
    bot = fed_core(short_tmp, 10)
    remote = RemoteCore(short_tmp, bot.config, retry_s=PERIOD_S)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server = ControlServer(bot, short_tmp, stream_period_s=0.001)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        tg.start_soon(remote.run)
        await until(lambda: remote.connected)
        await anyio.to_thread.run_sync(stuck.connect, str(socket_path(short_tmp)))
        stuck.sendall(b"subscribe\n")  # and never reads
        await until(lambda: len(server.subscribers) == 2)
        slowest = 0.0
        minute = 10
        while server.dropped_subscribers == 0 and minute < 200:
            started = time.perf_counter()
            feed(bot, 1, minute)
            server.publish_once()  # what the publisher does at each tick: never waits
            slowest = max(slowest, time.perf_counter() - started)
            minute += 1
            await anyio.sleep(0.005)
        assert server.dropped_subscribers == 1
        assert slowest < 0.5
        await until(lambda: remote.snapshot() == bot.snapshot())  # the live one stays
        assert remote.connected and len(server.subscribers) == 1
        remote.stop()
        tg.cancel_scope.cancel()
    stuck.close()


@pytest.mark.anyio
async def test_with_no_bot_it_shows_the_store_stopped_then_picks_the_bot_up(
    short_tmp: Path,
) -> None:
    bot = fed_core(short_tmp, 20)
    bot.checkpoint()
    offline = fed_core(short_tmp, 0, read_only=True)
    remote = RemoteCore(short_tmp, bot.config, offline=offline, retry_s=PERIOD_S)
    events: list[str] = []
    remote.observers.append(lambda e: events.append(e.message))
    async with anyio.create_task_group() as tg:
        tg.start_soon(remote.run)
        assert not first_snapshot(remote)
        await anyio.sleep(3 * PERIOD_S)
        word, ok = remote.link()
        assert word.startswith("BOT STOPPED") and not ok
        assert remote.read_only
        with pytest.raises(CommandError, match="no bot is running"):
            remote.submit(Command(CommandKind.PAUSE))
        for round_ in ("attached to", "reconnected to"):
            async with serving(bot, short_tmp):
                await until(lambda: remote.connected)
                assert events[-1].startswith(round_)
            await until(lambda: not remote.connected)
            assert remote.link()[0].startswith("BOT STOPPED at ")
            assert remote.snapshot() == bot.snapshot()  # the bot's last state stays shown
        assert remote.link() != ("RECONNECTED", True)
        remote.stop()
    assert remote.attaches == 2


# -- the cockpit ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_attached_cockpit_shows_the_bot_and_p_pauses_the_bot(short_tmp: Path) -> None:
    bot = fed_core(short_tmp)
    remote = RemoteCore(short_tmp, bot.config, retry_s=PERIOD_S)
    app = AttachApp(remote, wall_clock=wall_clock)
    async with serving(bot, short_tmp), app.run_test(size=(120, 40)) as pilot:
        await until(lambda: remote.connected)
        await pilot.pause()
        text = status_text(app)
        assert "ATTACHED" in text and "READ-ONLY" not in text
        assert fmt.utc_stamp(bot.heartbeat.market_time_s) in text
        table = app.main.query_one(PositionsTable)
        assert table.row_count == len(bot.snapshot().positions) == 5
        await pilot.press("p")
        await until(lambda: bot.paused)
        await until(lambda: any("entries paused" in m for m, _ in app.toasts))
        await until(lambda: "PAUSED" in status_text(app))


@pytest.mark.anyio
async def test_a_read_only_attach_shows_paused_and_refuses_p(short_tmp: Path) -> None:
    bot = fed_core(short_tmp, 30)
    bot.submit(Command(CommandKind.PAUSE))
    remote = RemoteCore(short_tmp, bot.config, read_only=True, retry_s=PERIOD_S)
    app = AttachApp(remote, wall_clock=wall_clock)
    async with serving(bot, short_tmp), app.run_test(size=(80, 24)) as pilot:
        await until(lambda: remote.connected)
        await pilot.pause()
        text = status_text(app)
        assert "PAUSED" in text and "READ-ONLY" in text
        await pilot.press("p")
        await anyio.sleep(5 * PERIOD_S)
        assert bot.paused  # p (resume) refused
        assert app.check_action("resume", ()) is False  # hidden from the footer too
        with pytest.raises(CommandError, match="read-only"):
            remote.submit(Command(CommandKind.RESUME))


def picture_app(data_dir: Path) -> AttachApp:
    """An attached cockpit over the hand-made snapshot, as if streamed, its link loop off."""
    remote = RemoteCore(data_dir, fed_core(data_dir, 0).config, clock=RemoteClock(lambda: 0.0))
    fields = codec.encode_fields(fixture_snapshot())
    remote.apply_line(codec.dumps({"t": "hello", "version": 1, "pid": 4242}))
    remote.apply_line(codec.dumps({"t": "snap", "now": START_S + 4 * 3600, "d": {"set": fields}}))
    remote.connected, remote.attaches = True, 1
    app = AttachApp(remote, wall_clock=wall_clock, run_core=False)
    app.animation_level = "none"
    return app


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_attached_cockpit_picture(
    snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(picture_app(tmp_path), terminal_size=size)


# -- the command line -----------------------------------------------------------------------


def test_plain_bigalpha_tui_attaches_when_the_folders_bot_runs(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, str]] = []

    def fake_attach(args: argparse.Namespace, notice: str = "") -> int:
        calls.append((args.data_dir, notice))
        return 0

    monkeypatch.setattr(attach_mod, "run_attach", fake_attach)
    monkeypatch.setattr(
        attach_mod,
        "cmd_attach",
        lambda argv: fake_attach(attach_mod.attach_parser().parse_args(argv)),
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(socket_path(short_tmp)))
        listener.listen()
        assert bot_answers(short_tmp)
        assert cli.dispatch(["--data-dir", str(short_tmp)]) == 0
        assert cli.dispatch(["attach", "--data-dir", str(short_tmp), "--read-only"]) == 0
    assert calls[0] == (
        str(short_tmp),
        f"a bot already runs on {short_tmp}: attaching to it; run options unused",
    )
    assert calls[1] == (str(short_tmp), "")
    assert not bot_answers(short_tmp)


def test_the_remote_clock_runs_at_the_bots_speed_while_attached_and_stops_with_it() -> None:
    wall = [100.0]
    clock = RemoteClock(lambda: wall[0])
    clock.set(START_S, 60.0)
    clock.running = True
    wall[0] += 2.0
    assert clock.now() == START_S + 120.0
    clock.running = False  # the bot went away: its clock stops where it was last seen
    assert clock.now() == START_S
    clock.set(START_S, None)  # --speed max: only the bot's lines move it
    clock.running = True
    assert clock.now() == START_S


def test_attach_without_a_terminal_says_so(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.dispatch(["attach", "--data-dir", str(short_tmp)]) == 2
    assert "the cockpit needs a terminal" in capsys.readouterr().err
