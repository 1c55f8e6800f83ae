"""The switchable guards (gates 3-5): ON/OFF, entries blocked, what the blocked trades
would have done, and the rule in words. The cursor row is the guard `enter` switches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from bigalpha_tui.core.snapshot import GuardStatsView
from bigalpha_tui.core.types import SWITCHABLE_GUARDS, BlockReason

from . import fmt
from .table_sync import Cell, Row, sync_rows

COLUMNS: tuple[tuple[str, str], ...] = (
    ("guard", "Guard"),
    ("state", "State"),
    ("blocks", "Blocks"),
    ("outcome", "Blocked trades"),
)


class GuardTable(DataTable[Text]):
    """One row per switchable guard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    GuardTable { height: auto; max-height: 8; }
    GuardTable > .guard-table--on { color: $text-success; }
    GuardTable > .guard-table--off {
        color: $text-error; background: $error-muted; text-style: bold;
    }
    GuardTable > .guard-table--cost { color: $text-warning; }
    GuardTable > .guard-table--saved { color: $text-success; }
    GuardTable > .guard-table--muted { color: $foreground-muted; }
    GuardTable > .guard-table--name { text-style: bold; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "guard-table--on",
        "guard-table--off",
        "guard-table--cost",
        "guard-table--saved",
        "guard-table--muted",
        "guard-table--name",
    }

    def __init__(
        self, rules: Mapping[BlockReason, str], *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.rules = dict(rules)
        self.enabled: dict[BlockReason, bool] = {}
        self._shown: dict[str, Row] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, stats: Sequence[GuardStatsView], enabled: Mapping[BlockReason, bool]) -> bool:
        self.enabled = {g: bool(enabled.get(g, True)) for g in SWITCHABLE_GUARDS}
        by_reason = {s.reason: s for s in stats}
        rows = {
            g.value: self.row(g, by_reason.get(g, GuardStatsView(g))) for g in SWITCHABLE_GUARDS
        }
        return sync_rows(self, self._shown, rows, [k for k, _ in COLUMNS], self._cell)

    def _cell(self, cell: Cell) -> Text:
        text, style = cell
        if not style:
            return Text(text)
        return Text(text, self.get_component_rich_style(f"guard-table--{style}", partial=True))

    def row(self, reason: BlockReason, stats: GuardStatsView) -> Row:
        on = self.enabled.get(reason, True)
        return (
            (reason.value, "name"),
            (" ON " if on else " OFF ", "on" if on else "off"),
            (str(stats.blocked), ""),
            outcome_cell(stats),
        )

    def rules_text(self) -> str:
        """Each guard's rule on a line of its own, under the table: a column cut them off on
        an 80-column terminal."""
        return "\n".join(f"{reason.value}: {rule}" for reason, rule in self.rules.items())

    def selected(self) -> BlockReason | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return BlockReason(key) if key else None


def outcome_cell(stats: GuardStatsView) -> Cell:
    """What the blocked trades' shadow twins did, in the guards panel's words: "cost" (they
    would have made money), "saved" (they would have lost it), "even"; "open" while none has
    closed."""
    cost = stats.opportunity_cost_usd
    if not stats.blocked:
        return (fmt.DASH, "muted")
    if not stats.twins_closed:
        return ("open", "muted")
    still_open = f" ({stats.open_twins} open)" if stats.open_twins else ""
    if cost > 0:
        return (f"cost {fmt.usd(cost, signed=False)}{still_open}", "cost")
    if cost < 0:
        return (f"saved {fmt.usd(-cost, signed=False)}{still_open}", "saved")
    return (f"even{still_open}", "muted")
