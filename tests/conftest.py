"""Shared fixtures."""
import os
import tempfile

import pytest
import torch

# A command a test starts without --artifacts must not write into the project's own artifacts/
# folder (the shipped demo): the default root of every test process is a scratch folder.
os.environ.setdefault("SAML_ARTIFACTS", tempfile.mkdtemp(prefix="saml-test-artifacts-"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one thread is faster and immune to a busy second core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
