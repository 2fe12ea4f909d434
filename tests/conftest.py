from __future__ import annotations

import pytest

from samedenhancer import datasets


@pytest.fixture(scope="session")
def data_root():
    """The shared real data (../shared/data); tests that need it skip with a reason without it."""
    root = datasets.data_root()
    if root is None:
        pytest.skip("../shared/data not found (set SAMEDENHANCER_DATA)")
    return root
