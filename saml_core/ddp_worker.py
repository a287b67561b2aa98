"""A worker rank's life in a torchrun launch (docs/ENGINE.md, "Scale"): it waits for rank 0's
tasks (load data seed d, train run R, stop) and does them. Apart from `distributed.py`, whose
collectives the trainer uses, because a worker calls the trainer."""
from __future__ import annotations

import sys

from saml_core.data import load_dataset
from saml_core.distributed import Dist, PeerFailed, peer_lost, peer_lost_message
from saml_core.errors import Cancelled, TrainingFailed
from saml_core.run_config import RunConfig
from saml_core.train import train_run


def follow(dist: Dist, should_stop) -> int:
    """A worker's life: wait for rank 0's tasks and do them, until "stop" (returns 0), a
    cancel agreed on by all ranks (130) or a failure (1, one line on stderr)."""
    data = None
    try:
        while True:
            task = dist.broadcast()
            if task["op"] == "stop":
                return 0
            if task["op"] == "load":
                data = None  # the previous data seed's arrays go before the next are loaded
                data = dist._load_in_turn(lambda: load_dataset(task["dataset"], seed=task["seed"],
                                                               **task["options"]))
            elif task["op"] == "train":
                try:
                    train_run(RunConfig.from_dict(task["run"]), data, task["run_dir"], should_stop=should_stop,
                              dist=dist)
                except TrainingFailed:  # every rank saw it; rank 0 records it and goes on
                    continue
    except Cancelled:
        return 130
    except PeerFailed as exc:
        print(f"rank {dist.rank}: stopped: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not peer_lost(exc):
            raise
        print(f"rank {dist.rank}: stopped: {peer_lost_message(exc)}", file=sys.stderr)
        return 1
