"""Shared fixtures."""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

# A command a test starts without --artifacts must not write into the project's own artifacts/
# folder (the shipped demo): the default root of every test process is a scratch folder.
os.environ.setdefault("SAML_ARTIFACTS", tempfile.mkdtemp(prefix="saml-test-artifacts-"))
# Nor does the dashboard keep its reports in the project's .cache/ (dashboard/report_cache.py).
os.environ.setdefault("SAML_DASHBOARD_CACHE", tempfile.mkdtemp(prefix="saml-test-dashboard-cache-"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one thread is faster and immune to a busy second core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# MovieLens is never shipped (GroupLens' terms forbid redistribution): the tests read ML-100k from
# the MIT-licensed RecBole wheel, which carries it as atomic files. recbole is never installed or
# imported; the wheel is only unzipped. The digests pin the files the tests' counts rely on.
RECBOLE_WHEEL = "recbole==1.2.1"
ML100K_FILES = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}


def _ml100k_complete(folder: Path) -> bool:
    return all((folder / f).is_file() and hashlib.sha256((folder / f).read_bytes()).hexdigest() == digest
               for f, digest in ML100K_FILES.items())


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """A folder with ML-100k as RecBole atomic files (ml-100k.inter/.user/.item), taken at run time
    from the recbole==1.2.1 wheel (`pip download --no-deps`) into a cache outside the repository
    ($XDG_CACHE_HOME or ~/.cache, then saml-test-data/), reused when present. The folder appears by
    one rename when complete, under a file lock (two pytest-xdist workers). A machine that cannot
    obtain it FAILS the tests that need it, with the reason."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saml-test-data"
    target = root / "ml-100k-recbole-1.2.1"
    if _ml100k_complete(target):
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".ml-100k.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if _ml100k_complete(target):  # the other worker made it while we waited
                return target
            with tempfile.TemporaryDirectory(dir=root, prefix=".ml-100k-") as tmp:
                proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                       "--quiet", RECBOLE_WHEEL, "-d", tmp], capture_output=True, text=True, timeout=300)
                wheels = sorted(Path(tmp).glob("recbole-1.2.1-*.whl"))
                if proc.returncode or not wheels:
                    pytest.fail(f"cannot obtain ML-100k for the tests: `pip download --no-deps {RECBOLE_WHEEL}` failed "
                                f"(exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}", pytrace=False)
                stage = Path(tmp) / "ml-100k"
                stage.mkdir()
                with zipfile.ZipFile(wheels[0]) as wheel:
                    for f in ML100K_FILES:
                        (stage / f).write_bytes(wheel.read(f"recbole/dataset_example/ml-100k/{f}"))
                if not _ml100k_complete(stage):
                    pytest.fail(f"cannot obtain ML-100k for the tests: the files in {wheels[0].name} do not have the "
                                "expected SHA-256 digests", pytrace=False)
                shutil.rmtree(target, ignore_errors=True)  # a damaged copy
                os.replace(stage, target)
    except (OSError, KeyError, zipfile.BadZipFile, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot obtain ML-100k for the tests into {target}: {exc}", pytrace=False)
    return target
