"""Operator commands: the only way the UI, `ctl` or a test steers the core.

Commands are parsed and validated here, queued by `Core.submit`, and applied between bars,
never in the middle of a decision. Each applied command is logged as an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import CommandError
from .types import SWITCHABLE_GUARDS, BlockReason


class CommandKind(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    GUARD = "guard"
    LEARN = "learn"
    RELEASE = "release"
    CLOSE = "close"
    FLATTEN = "flatten"  # needs "--yes": cancel every order, close every position
    ACK_MISMATCH = "ack-mismatch"  # the operator looked at the exchange; entries may resume


@dataclass(frozen=True, slots=True)
class Command:
    """One operator command. `target` is a guard name or a symbol; `on` is a guard switch."""

    kind: CommandKind
    target: str = ""
    on: bool | None = None

    def describe(self) -> str:
        if self.kind is CommandKind.FLATTEN:
            return "flatten --yes"
        if self.kind is CommandKind.GUARD:
            return f"guard {self.target} {'on' if self.on else 'off'}"
        return f"{self.kind.value} {self.target}".strip()


USAGE = (
    "commands: pause | resume | learn | guard MAX_POSITIONS|FEE_EDGE|WHALE_CONFLICT on|off"
    " | release SYMBOL | close SYMBOL | flatten --yes | ack-mismatch"
)
CONFIRM = "--yes"


def guard_command(name: str, on: bool) -> Command:
    reason = _guard(name)
    return Command(CommandKind.GUARD, reason.value, on)


def _guard(name: str) -> BlockReason:
    key = name.strip().upper()
    for reason in SWITCHABLE_GUARDS:
        if reason.value == key:
            return reason
    names = ", ".join(r.value for r in SWITCHABLE_GUARDS)
    raise CommandError(f"unknown guard {name!r}; switchable guards: {names}")


def _symbol(word: str) -> str:
    symbol = word.strip().upper()
    if not symbol.isalnum() or len(symbol) > 30:
        raise CommandError(f"{word!r} is not a symbol such as BTCUSDT")
    return symbol


def parse_command(text: str) -> Command:
    """Parse `ctl`-style text; raises CommandError with the usage on anything else."""
    words = text.split()
    if not words:
        raise CommandError(f"empty command; {USAGE}")
    head, args = words[0].lower(), words[1:]
    try:
        kind = CommandKind(head)
    except ValueError:
        raise CommandError(f"unknown command {words[0]!r}; {USAGE}") from None
    if kind is CommandKind.FLATTEN:
        if args != [CONFIRM]:
            raise CommandError(
                f"flatten cancels every order and closes every position: add {CONFIRM}"
            )
        return Command(kind, on=True)
    if kind in (CommandKind.PAUSE, CommandKind.RESUME, CommandKind.LEARN, CommandKind.ACK_MISMATCH):
        if args:
            raise CommandError(f"{kind.value} takes no arguments; {USAGE}")
        return Command(kind)
    if kind is CommandKind.GUARD:
        if len(args) != 2 or args[1].lower() not in ("on", "off"):
            raise CommandError(f"usage: guard NAME on|off; {USAGE}")
        return guard_command(args[0], args[1].lower() == "on")
    if len(args) != 1:
        raise CommandError(f"usage: {kind.value} SYMBOL; {USAGE}")
    return Command(kind, _symbol(args[0]))
