"""How a training ends when it gives no result. Raised by the trainer and by the code that
drives it (the experiment loop, the DDP ranks, the CLI's SIGTERM handler); here, apart from
`train.py`, so that the drivers and the trainer need not import each other."""
from __future__ import annotations


class Cancelled(Exception):
    """Training stopped on request (SIGTERM); finished epochs are checkpointed."""


class TrainingFailed(RuntimeError):
    """The run cannot give a result (loss or predictions became NaN/inf); the message says where."""
