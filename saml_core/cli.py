"""`python -m saml_core ...`: each area registers its own sub-commands."""
from __future__ import annotations

import argparse
import gc
import signal
import sys

from saml_core.artifacts import ArtifactError
from saml_core.config import ConfigError
from saml_core.data.types import DataError


def build_parser() -> argparse.ArgumentParser:
    from saml_core.data import data_cli
    from saml_core import commands as engine_cli

    parser = argparse.ArgumentParser(prog="python -m saml_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_cli.add_commands(sub)
    engine_cli.add_commands(sub)
    return parser


MAX_ERROR = 2000  # characters of an error line; messages name values from files, which can be anything


def one_line(text: str) -> str:
    """An error as one line of bounded length: a line break from a file's value is shown as \\n."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= MAX_ERROR else f"{text[:MAX_ERROR]}... ({len(text):,} characters in all)"


class _Unbreakable:
    """stdout/stderr that outlive their reader: when whoever reads the output goes away (the job
    worker was killed, `| head` closed the pipe) or the log cannot be written, output is dropped
    instead of stopping a training run with BrokenPipeError."""

    def __init__(self, stream):
        self._stream, self._broken = stream, False

    def write(self, text):
        if not self._broken:
            try:
                return self._stream.write(text)
            except OSError:
                self._broken = True
        return len(text)

    def flush(self):
        if not self._broken:
            try:
                self._stream.flush()
            except OSError:
                self._broken = True

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    streams = sys.stdout, sys.stderr
    wrapped = sys.stdout, sys.stderr = _Unbreakable(sys.stdout), _Unbreakable(sys.stderr)
    try:
        return _main(argv)
    finally:
        # A broken stream is not handed back: flushing it at exit would fail again (exit code 120).
        sys.stdout, sys.stderr = (None if w._broken else s for w, s in zip(wrapped, streams))


LATE_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def exit_quietly(rc: int) -> int:
    """`python -m saml_core` after its command: SIGINT and SIGTERM are recorded, then blocked,
    until the process is gone. The interpreter's shutdown takes a moment (torch tears down), and
    a Ctrl-C or a cancel landing in it used to kill the process by signal, or print a
    KeyboardInterrupt traceback from an exit handler, after the command had said it finished.
    One that arrives before the block is reported in one line; later ones are dropped with the
    process (every file was written before this point)."""
    late: list[int] = []
    for _ in range(3):  # a KeyboardInterrupt can land between two of these lines; then again
        try:
            for sig in LATE_SIGNALS:
                signal.signal(sig, lambda signum, frame: late.append(signum))
            signal.pthread_sigmask(signal.SIG_BLOCK, LATE_SIGNALS)
            break
        except KeyboardInterrupt:
            late.append(signal.SIGINT)
    late += sorted(signal.sigpending() & LATE_SIGNALS)
    if late and rc == 0:
        print(f"{signal.Signals(late[0]).name} received after the command had finished; its results are complete",
              file=sys.stderr)
    # What is alive now lives until the process ends: the shutdown's garbage collections need not
    # walk it (torch's objects among them). Measured: the interpreter's exit after a quick
    # experiment 0.5-0.6 -> ~0.2 s of CPU (bench --experiment).
    gc.freeze()
    return rc


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except (DataError, ConfigError, ArtifactError) as exc:  # bad input: one clear line, no traceback
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine (full disk, I/O error, permissions): one line naming the file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {one_line(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a training run (imports, argument parsing)
        print("interrupted", file=sys.stderr)
        return 130
