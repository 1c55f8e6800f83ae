"""What the list screens (journal `t`, events `e`) share: a hidden search box that `/` opens
and that filters as you type, `enter` in it applying the filter, `escape` in it clearing it
(elsewhere going back), and `enter` on a row opening that row in full."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import DataTable, Input


class FilteredListScreen(Screen[None]):
    """A list with a `/` filter. Subclasses give `list_table`, `redraw` and `open_detail`."""

    query_text = ""

    @property
    def search(self) -> Input:
        return self.query_one(Input)

    @property
    def list_table(self) -> DataTable[object]:
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw the list for the current filter."""
        raise NotImplementedError

    def open_detail(self) -> None:
        """Open the highlighted row in full."""
        raise NotImplementedError

    def action_filter(self) -> None:
        self.search.display = True
        self.search.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value.strip()
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.query_text:
            self.search.display = False
        self.list_table.focus()

    def action_back(self) -> None:
        if self.search.has_focus:
            # escape in the search box clears the filter rather than leaving the screen
            self.search.value = ""
            self.search.display = False
            self.list_table.focus()
            return
        self.dismiss()

    def action_detail(self) -> None:
        self.open_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # enter on the focused table arrives as a row selection, not as our binding
        event.stop()
        self.open_detail()
