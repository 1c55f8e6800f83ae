"""Keep a DataTable in step with a keyed set of rows by touching only what changed.

Measured on Textual 8: `clear()` plus re-adding every row costs twice the CPU of
`update_cell` on the changed cells, so tables are never cleared to refresh them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

#: the keys of a list whose rows open in full (journal, events): the footer says what enter
#: does (DataTable's own enter binding is hidden), j/k/g/G move as in less and k9s
ROW_LIST_BINDINGS: tuple[BindingType, ...] = (
    Binding("enter", "select_cursor", "Detail"),
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "Top", show=False),
    Binding("G", "scroll_bottom", "Bottom", show=False),
)

#: one cell before styling: (text, component-class suffix or "" for plain)
Cell = tuple[str, str]
Row = tuple[Cell, ...]


def sync_rows(
    table: DataTable[Text],
    cache: dict[str, Row],
    rows: Mapping[str, Row],
    column_keys: Sequence[str],
    render: Callable[[Cell], Text],
) -> bool:
    """Remove rows that went away, add new ones at the end, update changed cells.

    `cache` holds what the table shows now and is updated in place. True when anything
    changed.
    """
    changed = False
    at_cursor = cursor_key(table)
    for key in [k for k in cache if k not in rows]:
        table.remove_row(key)
        del cache[key]
        changed = True
    for key, row in rows.items():
        old = cache.get(key)
        if old is None:
            table.add_row(*(render(cell) for cell in row), key=key)
            changed = True
        elif old != row:
            for column, before, after in zip(column_keys, old, row, strict=True):
                if before != after:
                    # the column widens when a value outgrows it (T1T2 -> T1T2T3), and never
                    # narrows under a shorter one, so the columns to its right do not jump
                    text = render(after)
                    current = table.columns.get(ColumnKey(column))
                    grow = current is None or text.cell_len > current.content_width
                    table.update_cell(key, column, text, update_width=grow)
            changed = True
        cache[key] = row
    if changed and at_cursor in cache and cursor_key(table) != at_cursor:
        # the cursor stays on its row (a position, a symbol), not on a row number
        table.move_cursor(row=table.get_row_index(at_cursor), animate=False)
    return changed


def cursor_key(table: DataTable[Text]) -> str | None:
    """The key of the row under the cursor, or None for an empty table."""
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
