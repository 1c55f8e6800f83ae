"""A footer that packs its keys to the terminal's width, so a full screen's `esc Back` and
`? Help` stay on screen at 60 columns: compact under `COMPACT_BELOW` columns and, under
`TIGHT_BELOW`, without the `^p palette` hint (ctrl+p still opens the palette)."""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Footer

#: below this width a footer packs its keys tighter, so `?` and `q` stay on screen
COMPACT_BELOW = 80
#: below this width even a compact footer cannot hold every key and the palette's hint
TIGHT_BELOW = 70


class FittedFooter(Footer):
    DEFAULT_CSS = """
    FittedFooter.-tight FooterKey.-command-palette { display: none; }
    """

    def on_resize(self, event: Resize) -> None:
        width = event.size.width
        self.compact = width < COMPACT_BELOW
        self.set_class(width < TIGHT_BELOW, "-tight")
