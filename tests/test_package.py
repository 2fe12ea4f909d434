from importlib import metadata

import samedenhancer


def test_version_comes_from_the_compiled_core_and_matches_the_installed_package():
    # the core's version is compiled in from pyproject (scikit-build-core); a stale build disagrees
    assert samedenhancer.__version__ == metadata.version("samedenhancer")
