"""A block of styled text with a fixed size set by CSS.

`Static.update()` asks for a new layout of the whole screen on every call; the symbol cards
change text at every bar, so they use this instead: a new text only repaints the block.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class TextBlock(Widget):
    """Draws `text`; give it a fixed width and height in CSS."""

    DEFAULT_CSS = """
    TextBlock { width: auto; height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    text: reactive[Text] = reactive(Text, layout=False)
    """What the block shows."""

    def __init__(
        self,
        text: Text | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if text is not None:
            self.set_reactive(TextBlock.text, text)

    def render(self) -> Text:
        return self.text
