"""saml_core: train, checkpoint, evaluate and probe SAML and its baselines (no UI code here)."""
import os

# OpenMP threads that run out of work sleep at once instead of spinning (libgomp spins for a while
# by default): on a machine shared with other jobs a spinning thread takes a core from them, and
# a preempted one stalls every parallel op of ours (measured: docs/ENGINE.md, Speed). OpenMP reads
# this when torch loads, so it counts only where saml_core is imported before torch, as in
# `python -m saml_core ...`; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
