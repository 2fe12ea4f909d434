from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import configuration, settings

from samedenhancer.bench import datasets

# The suite never writes into the checkout: Hypothesis keeps no example database (every run starts
# from the same examples) and its other files (./.hypothesis by default) go to the temporary folder.
configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "samedenhancer-hypothesis")
settings.register_profile("samedenhancer", database=None)
settings.load_profile("samedenhancer")


@pytest.fixture(scope="session")
def data_root():
    """The shared real data (../shared/data); tests that need it skip with a reason without it."""
    root = datasets.data_root()
    if root is None:
        pytest.skip("../shared/data not found (set SAMEDENHANCER_DATA)")
    return root


@pytest.fixture(scope="session")
def litemedsam_dir():
    """The cached LiteMedSAM export (``$SAMEDENHANCER_CACHE`` or the user cache), exported on first
    use; tests that need it skip with a reason when it is missing and cannot be exported here."""
    from samedenhancer.registry import ModelMissingError, load_model, model_dir

    try:
        load_model("litemedsam")
    except ModelMissingError as exc:
        pytest.skip(str(exc))
    return model_dir("litemedsam")


@pytest.fixture(scope="session")
def segment_anything():
    """Skip unless torch and segment-anything (the SAM ViT export) are installed; segment-anything is
    looked up, not imported (its package __init__ needs torchvision, which the exporter avoids)."""
    import importlib.util

    pytest.importorskip("torch")
    if importlib.util.find_spec("segment_anything") is None:
        pytest.skip("segment-anything is not installed (the export extra)")


@pytest.fixture(autouse=True, scope="session")
def use_leak_safe_log_records():
    """Keep Python's own log records. napari's pytest plugin (the test extra installs napari) has a
    session fixture of this name that swaps the LogRecord factory for one turning every argument
    into a string, which breaks log calls with a mapping argument (Ray Data logs one) in tests that
    have nothing to do with napari; a conftest fixture of the same name replaces the plugin's."""
    yield
