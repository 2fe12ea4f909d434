"""_core.pyi matches the compiled module: same public names, same parameters (names, order, which
have defaults) as pybind11's signatures; and the facade's doctests run."""

from __future__ import annotations

import ast
import doctest
import importlib.resources
import re

import pytest

import samedenhancer
from samedenhancer import _core, metrics
from samedenhancer.core import geometry, labels, prompts
from studies import corruption


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p.strip() for p in parts + [current] if p.strip()]


def _runtime_signature(fn) -> list[tuple[str, bool]]:
    """[(name, has_default)] from the first line of a pybind11 docstring."""
    first = fn.__doc__.splitlines()[0]
    match = re.fullmatch(rf"{fn.__name__}\((.*)\) -> .*", first)
    assert match, first
    params = []
    for part in _split_top_level(match.group(1)):
        name = part.split(":", 1)[0].strip()
        params.append((name, "=" in part.split(":", 1)[1]))
    return params


def _stub() -> ast.Module:
    text = importlib.resources.files(samedenhancer).joinpath("_core.pyi").read_text()
    return ast.parse(text)


def test_stub_names_match_module():
    tree = _stub()
    stub_names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stub_names |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    runtime = {name for name in dir(_core) if not name.startswith("_")} | {"__version__"}
    assert stub_names == runtime


def test_stub_classes_match_module():
    """Each class of the stub lists exactly the runtime's public attributes, as read-only properties."""
    classes = [n for n in _stub().body if isinstance(n, ast.ClassDef)]
    assert [c.name for c in classes] == ["MinedPrompts"]
    for node in classes:
        runtime = getattr(_core, node.name)
        public = {name for name in vars(runtime) if not name.startswith("_")}
        stub = {n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
        assert stub == public, node.name
        for fn in node.body:
            if isinstance(fn, ast.FunctionDef) and not fn.name.startswith("_"):
                assert [ast.unparse(d) for d in fn.decorator_list] == ["property"], fn.name
                assert isinstance(vars(runtime)[fn.name], property) and vars(runtime)[fn.name].fset is None, fn.name


def test_stub_parameters_match_signatures():
    for node in _stub().body:
        if not isinstance(node, ast.FunctionDef):
            continue
        args = node.args.args
        defaults = [False] * (len(args) - len(node.args.defaults)) + [True] * len(node.args.defaults)
        stub = [(a.arg, d) for a, d in zip(args, defaults)]
        assert stub == _runtime_signature(getattr(_core, node.name)), node.name


def test_signature_parser_sees_defaults():
    assert _runtime_signature(_core.connected_components) == [("mask", False), ("connectivity", True)]


@pytest.mark.parametrize("module", [labels, geometry, prompts, metrics, corruption])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
