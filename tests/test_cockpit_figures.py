"""The main screen's figures and small-terminal fixes: the session line, the whale gauge's
numbers at 60 columns, card 6 and the footer at 60x20, the release toast, the palette's
"Keys" entry. Pictures at 60x20; the 80x24 and 120x40 ones are in test_app.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from snapshot_fixtures import cockpit, fixture_core, fixture_snapshot
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from bigalpha_tui.app import CockpitApp
from bigalpha_tui.core.probation import SymbolStatus
from bigalpha_tui.core.snapshot import SessionView
from bigalpha_tui.core.types import SymbolState
from bigalpha_tui.screens.help import HelpScreen
from bigalpha_tui.widgets.session_figures import SessionFigures
from bigalpha_tui.widgets.symbol_card import SymbolCard
from bigalpha_tui.widgets.whale_gauge import WhaleGauge

SnapCompare = Callable[..., bool]


class Harness(App[None]):
    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def plain(widget: Widget) -> str:
    rendered = widget.render()
    assert isinstance(rendered, Text)
    return rendered.plain


def drawn(widget: Widget) -> list[str]:
    """The widget's lines as the screen shows them (cut to its width)."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


def fixture_app(data_dir: Path) -> CockpitApp:
    return cockpit(fixture_core(data_dir), fixture_snapshot())


# -- the session line ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (120, ["since 08:30", "11 trades", "64% won", "PF live 1.84 (11)", "shadow 2.31 (10)"]),
        (80, ["64% won", "PF 1.84 (11)", "shadow 2.31 (10)", "fees $3.20"]),
        (60, ["64% won", "PF 1.84 (11)", "sh 2.31 (10)"]),
    ],
)
async def test_the_session_line_keeps_whole_figures_at_every_width(
    width: int, shown: list[str]
) -> None:
    line = SessionFigures()
    async with Harness(line).run_test(size=(width, 1)) as pilot:
        line.figures = fixture_snapshot().session
        await pilot.pause()
        text = drawn(line)[0].strip()
    assert text.startswith("Today +$14.62 │ ")
    assert "…" not in text
    for figure in shown:
        assert figure in text


@pytest.mark.anyio
async def test_the_session_line_before_any_trade_says_so() -> None:
    line = SessionFigures()
    async with Harness(line).run_test(size=(80, 1)):
        line.figures = SessionView(started_s=0.0)
        text = plain(line)
    assert "0 trades" in text and "won" not in text and "PF — (0)" in text


# -- the whale gauge on a narrow card -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("width", [24, 17])
async def test_the_gauge_keeps_cvd_and_ofi_whole_when_narrow(width: int) -> None:
    gauge = WhaleGauge()
    async with Harness(gauge).run_test(size=(width, 3)) as pilot:
        gauge.flow = fixture_snapshot().symbols[0].flow  # BTCUSDT: CVD +2.70k, OFI +0.12
        await pilot.pause()
        lines = drawn(gauge)
    assert "CVD +2.70k" in lines[1] and "OFI +0.12" in lines[2]
    assert not any("…" in line for line in lines[1:])


# -- 60x20 ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_at_60x20_every_card_shows_its_cvd_and_ofi(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        gauge = app.main.cards["ETHUSDT"].gauge
        lines = drawn(gauge)
    assert "CVD -18.4k" in lines[1] and "OFI -0.07" in lines[2]


@pytest.mark.anyio
async def test_at_60x20_key_6_brings_card_6_into_view_from_another_tab(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("right_square_bracket", "6")  # from the positions tab
        await pilot.pause()
        card = app.main.focused
        assert isinstance(card, SymbolCard) and card.symbol == "DOTUSDT"
        market = app.main.query_one("#market")
        assert market.content_region.contains_region(card.region)


@pytest.mark.anyio
async def test_at_60x20_the_footer_keeps_help_and_quit(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        keys = {k.key: k for k in app.main.query(FooterKey)}
        for key in ("question_mark", "q"):
            assert keys[key].region.right <= 60, f"{key} is off screen"
            assert keys[key].region.width > 0


def test_the_main_screen_60x20(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=(60, 20))


# -- toasts and the palette -----------------------------------------------------------------


@pytest.mark.anyio
async def test_the_release_toast_names_the_symbol(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    learning = app.core.learning
    assert learning is not None
    learning.statuses["SOLUSDT"] = SymbolStatus("SOLUSDT", state=SymbolState.PROBATION)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "r", "y")
        await pilot.pause()
    message, severity = app.toasts[-1]
    assert severity == "information"
    assert message.startswith("SOLUSDT: PROBATION -> ACTIVE")


@pytest.mark.anyio
async def test_keys_from_the_palette_open_the_help_screen_and_esc_closes_it(
    tmp_path: Path,
) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert "Keys" not in titles  # Textual's side panel: squeezed the cockpit, no esc
        await pilot.press("ctrl+p", *"keys")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.main
        app.action_show_help_panel()  # however Textual's panel is asked for
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert not app.main.query("HelpPanel")
        await pilot.press("escape")
        assert app.screen is app.main
        assert app.main.query_one("#body").size.width == 80  # nothing beside the cockpit
