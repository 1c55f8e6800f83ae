"""A yes/no question before anything that changes what the bot does: `y` confirms,
`n` or `esc` cancels (mouse users get two buttons). `SecondConfirm` is the last step before
something that cannot be undone (flatten): another key confirms it, so that no held or
repeated key answers both questions."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static


class ConfirmDialog(ModalScreen[bool]):
    """Dismisses with True on `y`, False on `n` / `esc`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n", "answer(False)", "No", id="confirm-no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm-cancel", show=False),
    ]

    DEFAULT_CSS = """
    ConfirmDialog #confirm-body { width: auto; max-width: 66; height: auto; margin-bottom: 1; }
    """

    AUTO_FOCUS = "#no"
    YES_LABEL = "Yes  (y)"

    def __init__(
        self,
        question: str,
        detail: str = "",
        *,
        title: str = "Confirm",
        body: RenderableType | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(self.question, id="question", markup=False)
            if self.detail:
                yield Static(self.detail, id="detail", markup=False)
            if self.body is not None:
                yield Static(self.body, id="confirm-body")
            with Horizontal(id="buttons"):
                variant = "error" if self.body is not None else "warning"
                yield Button(self.YES_LABEL, id="yes", variant=variant, compact=True)
                yield Button("No  (n / esc)", id="no", compact=True)
        yield Footer()  # this dialog's keys, not those of the screen beneath

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class SecondConfirm(ConfirmDialog, inherit_bindings=False):
    """The second question before flatten: `F` (shift+f) confirms, `n` / `esc` cancels;
    `y` does nothing here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("F,shift+f", "answer(True)", "Yes", id="second-yes"),
        Binding("n", "answer(False)", "No", id="second-no"),
        Binding("escape", "answer(False)", "Cancel", id="second-cancel", show=False),
    ]
    YES_LABEL = "Yes  (shift+F)"
