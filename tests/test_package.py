import samedenhancer


def test_version_comes_from_the_compiled_core():
    assert samedenhancer.__version__ == "0.1.0"
