"""`g`: the switchable guards (gates 3-5) with their state and effectiveness. `enter` or
`space` asks to switch the selected guard; nothing changes until the dialog says yes."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from bigalpha_tui.core.config import Config
from bigalpha_tui.core.snapshot import Snapshot
from bigalpha_tui.core.types import SWITCHABLE_GUARDS, BlockReason
from bigalpha_tui.widgets.guard_table import GuardTable

from .confirm import ConfirmDialog


def guard_rule(reason: BlockReason, config: Config) -> str:
    """The rule a guard enforces, in the operator's words, with the configured numbers."""
    gates = config.gates
    if reason is BlockReason.MAX_POSITIONS:
        return f"at most {gates.max_positions} open positions"
    if reason is BlockReason.FEE_EDGE:
        return f"edge > 2×{gates.fee_bps:g} bps fees + slip buffer"
    if reason is BlockReason.WHALE_CONFLICT:
        return "no entry against the whales"
    return ""


class GuardsScreen(ModalScreen[None]):
    """Guard switches; the app supplies the snapshot and what to do on a confirmed switch."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,space", "switch_guard", "Switch guard", id="guard-toggle"),
        Binding("escape,g,q", "dismiss", "Back", id="guard-back"),
    ]

    AUTO_FOCUS = "#guards-table"

    def __init__(
        self,
        config: Config,
        snapshot: Snapshot,
        on_switch: Callable[[BlockReason, bool], None],
        *,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.snapshot = snapshot
        self.on_switch = on_switch
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(id="guards-body") as body:
            body.border_title = "Guards"
            body.border_subtitle = "enter / space: switch · esc: back"
            yield Static(self._intro(), id="guards-intro")
            table = GuardTable(
                {g: guard_rule(g, self.config) for g in SWITCHABLE_GUARDS}, id="guards-table"
            )
            yield table
            yield Static(table.rules_text(), id="guards-rules", markup=False)
        yield Footer()

    def _intro(self) -> str:
        if self.read_only:
            return "Read-only session: guards are shown but cannot be switched."
        return (
            "A guard switched OFF lets through the entries it would have blocked. "
            "Every switch is logged and persisted. Blocked trades: cost when their shadow "
            "twins made money, saved when they lost it."
        )

    @property
    def table(self) -> GuardTable:
        return self.query_one(GuardTable)

    def on_mount(self) -> None:
        self.show(self.snapshot)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_guard" and self.read_only:
            return None
        return True

    def show(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.table.show(snapshot.guard_stats, snapshot.guards_enabled)

    def on_data_table_row_selected(self, event: GuardTable.RowSelected) -> None:
        # enter on the focused table arrives as a row selection, not as our binding
        event.stop()
        if self.check_action("switch_guard", ()):
            self.action_switch_guard()

    def action_switch_guard(self) -> None:
        reason = self.table.selected()
        if reason is None:
            return
        turn_on = not self.table.enabled.get(reason, True)
        question = f"Switch the {reason.value} guard {'ON' if turn_on else 'OFF'}?"
        detail = guard_rule(reason, self.config)
        if not turn_on:
            detail += " — the entries it would block will go through."

        def answered(yes: bool | None) -> None:
            if yes:
                self.on_switch(reason, turn_on)

        self.app.push_screen(ConfirmDialog(question, detail, title="Switch guard"), answered)
