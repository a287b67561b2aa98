"""saml_core: train, checkpoint, evaluate and probe SAML and its baselines (no UI code here)."""
import os

# How OpenMP threads wait for work: spin for libgomp's default ~300,000 rounds (~1-3 ms), then
# sleep. The adaptive thread policy (runtime.ThreadPolicy) runs a second thread only while the
# machine has an idle core; there, waking a sleeping thread at every parallel op made two threads
# slower than one (0.86-0.89x on a free machine, docs/ENGINE.md, Threads), and a spinning one takes
# no core from anyone; with one thread there is no team to wait. Waiting is fixed when torch loads,
# so this counts only where saml_core is imported before torch (`python -m saml_core ...`, the
# dashboard's jobs); a value the user set wins (OMP_WAIT_POLICY=PASSIVE: sleep at once, for
# --threads 2 pinned on a busy machine, where two spinning threads collapse).
os.environ.setdefault("GOMP_SPINCOUNT", "300000")

__version__ = "0.1.0"
