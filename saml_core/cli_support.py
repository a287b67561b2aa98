"""What every long-running command of the CLI shares (`commands.py`, `benchmark_command.py`): the
SIGTERM handling that cancels a training cleanly, and the artifacts root a command writes to."""
from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

from saml_core.errors import Cancelled


class CancelFlag:
    """SIGTERM = cancel. The first SIGTERM sets a flag that the trainer polls between batches (the
    clean path: the run stops, status "cancelled", finished epochs kept, exit code 130). A batch, a
    data load or a final write can outlast the promised second, so when the flag has not been
    picked up GRACE seconds later, or at a second SIGTERM, Cancelled is raised wherever the main
    thread is: every artifact write is atomic, so that too leaves only whole files (and the same
    status and exit code). Only code that runs Python bytecode can be interrupted: one long call
    into C (a huge matrix product) finishes first."""

    GRACE = 0.5

    def __init__(self):
        self.Cancelled = Cancelled
        self.flag = False  # SIGTERM received
        self.taken = False  # the trainer saw the flag and is stopping
        self._old = {sig: signal.signal(sig, handler)
                     for sig, handler in ((signal.SIGTERM, self._term), (signal.SIGALRM, self._alarm))}

    def _term(self, *_):
        if self.flag and not self.taken:
            self._disarm()
            raise self.Cancelled("cancelled (second SIGTERM)")
        self.flag = True
        if not self.taken:
            signal.setitimer(signal.ITIMER_REAL, self.GRACE)

    def _alarm(self, *_):
        if self.flag and not self.taken:
            self.taken = True
            raise self.Cancelled(f"cancelled (SIGTERM, not picked up within {self.GRACE:g} s)")

    def _disarm(self):
        self.taken = True
        signal.setitimer(signal.ITIMER_REAL, 0)

    def __call__(self) -> bool:
        if self.flag and not self.taken:
            self._disarm()  # the caller raises Cancelled now: no forced stop needed
        return self.flag

    def close(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def artifacts_root(args) -> Path:
    """--artifacts, else $SAML_ARTIFACTS, else the project's artifacts/ folder."""
    from saml_core.store import default_root

    return Path(args.artifacts) if args.artifacts else default_root()


# Options that say where a command writes, not what it computes: left out of the recorded command.
WHERE_OPTIONS = ("--artifacts", "--status-file")


def recorded_command(argv: list[str] | None = None) -> str:
    """The command line an experiment records (experiment.json "command"), without the options
    that say where it wrote (WHERE_OPTIONS): the record lives inside the artifacts root it would
    name, and experiments are copied and shipped elsewhere, where the writer's own folders mean
    nothing."""
    argv = list(sys.argv[1:] if argv is None else argv)
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in WHERE_OPTIONS:
            skip = True
        elif not a.startswith(tuple(f"{o}=" for o in WHERE_OPTIONS)):
            kept.append(a)
    return "python -m saml_core " + " ".join(shlex.quote(a) for a in kept)
