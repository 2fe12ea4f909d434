"""The Examples sections of the library's modules run as doctests, so no example drifts from the
code: the pure ones everywhere, those that run the embedded model (on the shipped sample,
``samedenhancer.data.fundus()``) where it is exported."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose examples need no model.
PURE = ["samedenhancer.validation", "samedenhancer.enhancer.options", "samedenhancer.enhancer.results",
        "samedenhancer.volumes.slices", "samedenhancer.data"]
#: Modules whose examples run LiteMedSAM on the shipped sample.
WITH_MODEL = ["samedenhancer.enhancer", "samedenhancer.predictor", "samedenhancer.streaming",
              "samedenhancer.prior_maps", "samedenhancer.pseudolabel", "samedenhancer.volumes.propagate",
              "samedenhancer.interactive.session"]


def _run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, name


@pytest.mark.parametrize("name", PURE)
def test_examples_without_a_model(name):
    _run(name)


@pytest.mark.parametrize("name", WITH_MODEL)
def test_examples_with_the_embedded_model(name, litemedsam_dir):
    _run(name)


def test_no_example_of_these_modules_is_skipped():
    """Only what needs a user's own checkpoint may skip; every example here runs."""
    for name in PURE + WITH_MODEL:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module):
            assert not any(example.options.get(doctest.SKIP) for example in test.examples), test.name
