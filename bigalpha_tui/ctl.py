"""`bigalpha-tui ctl`: steer a running bigalpha-tui (headless or cockpit) from a shell.

    bigalpha-tui ctl [--data-dir D] pause|resume|learn|guard NAME on|off|release SYMBOL|close SYMBOL
    bigalpha-tui ctl flatten --yes      pause entries, close every position, cancel every order
    bigalpha-tui ctl ack-mismatch       the exchange and the book differ: looked at, go on

Exit status: 0 the command was applied, 1 the core refused it (the reason is printed),
2 a usage error or no bigalpha-tui running on that data folder, 3 applied but not saved (the
store could not write it, e.g. a full disk: a restart would not keep it; the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from bigalpha_tui import locations
from bigalpha_tui.control import MAX_REQUEST_BYTES, Reply, socket_path
from bigalpha_tui.core.commands import USAGE, parse_command
from bigalpha_tui.core.errors import CommandError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_SAVED = 3
MAX_TIMEOUT_S = 3600.0
MAX_REPLY_BYTES = 1 << 16


class NotRunning(Exception):
    """Nothing answers on the data folder's control socket."""


def ctl_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui ctl",
        description="Send one operator command to the bigalpha-tui running on a data folder.",
        epilog=f"{USAGE}\n\nexit status: 0 applied, 1 refused by the core (reason on stderr), "
        "2 usage error or no bigalpha-tui running on the folder, 3 applied but not saved "
        "(the store cannot write: a restart would lose it; reason on stderr)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", help=f"feature store folder (env {locations.DATA_DIR_ENV})")
    p.add_argument(
        "--timeout",
        type=float,
        default=35.0,
        help=f"seconds to wait for the answer, more than 0 and at most {MAX_TIMEOUT_S:g} (35)",
    )
    p.add_argument("--json", action="store_true", help="print the raw JSON reply")
    p.add_argument(
        "--yes",
        action="store_true",
        help="flatten: yes, close every position (testnet: on the exchange)",
    )
    p.add_argument("command", nargs="*", help="the command and its arguments")
    return p


def cmd_ctl(argv: list[str]) -> int:
    args = ctl_parser().parse_args(argv)
    if not 0 < args.timeout <= MAX_TIMEOUT_S:  # nan fails this too
        print(
            f"bigalpha-tui ctl: --timeout accepts seconds more than 0 and at most"
            f" {MAX_TIMEOUT_S:g}, not {args.timeout:g}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    text = " ".join(args.command) + (" --yes" if args.yes else "")
    try:
        parse_command(text)
    except CommandError as exc:
        print(f"bigalpha-tui ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    data_dir = locations.data_dir(args.data_dir)
    try:
        reply = send(data_dir, text, args.timeout)
    except NotRunning as exc:
        print(f"bigalpha-tui ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"ok": reply.ok, "saved": reply.saved, "message": reply.message}))
    else:
        fine = reply.ok and reply.saved
        print(reply.message, file=sys.stdout if fine else sys.stderr)
    if not reply.ok:
        return EXIT_REFUSED
    return EXIT_OK if reply.saved else EXIT_NOT_SAVED


def send(data_dir: Path, text: str, timeout_s: float) -> Reply:
    """One request, one reply; NotRunning when no bigalpha-tui answers on `data_dir`."""
    path = socket_path(data_dir)
    not_running = NotRunning(f"no bigalpha-tui is running on {data_dir}")
    request = (text + "\n").encode()
    if len(request) > MAX_REQUEST_BYTES:
        raise not_running  # pragma: no cover - parse_command keeps requests short
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(os.fspath(path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise not_running from None
        except OSError as exc:
            raise NotRunning(f"cannot reach bigalpha-tui on {data_dir}: {exc}") from None
        try:
            sock.sendall(request)
            line = _read_line(sock)
        except TimeoutError:
            raise NotRunning(
                f"bigalpha-tui on {data_dir} did not answer within {timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise NotRunning(f"the connection to bigalpha-tui on {data_dir} broke: {exc}") from None
    try:
        return Reply.from_line(line)
    except ValueError:
        raise NotRunning(f"{path} answered with something that is not a reply") from None


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_REPLY_BYTES:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]
