"""docs/math.md cannot go stale: every `path::name` it cites names a file of the repository and a
name defined there (a function, class, method or assignment in Python, the identifier in C++)."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "math.md"
REF = re.compile(r"`([A-Za-z0-9_./-]+\.(?:py|hpp|cpp|h))::([A-Za-z_][A-Za-z0-9_.]*)`")


def _references() -> list[tuple[str, str]]:
    return sorted(set(REF.findall(DOC.read_text(encoding="utf-8"))))


@lru_cache(maxsize=None)
def _python_names(path: Path) -> frozenset[str]:
    """Module-level functions, classes and assignments, and Class.member for everything defined
    in a class body (nested classes too)."""
    names: set[str] = set()

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, prefix + node.name + ".")
            elif isinstance(node, ast.Assign):
                names.update(prefix + t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(prefix + node.target.id)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return frozenset(names)


def test_math_doc_has_references():
    refs = _references()
    assert len(refs) >= 80, f"only {len(refs)} path::name references found: the pattern no longer matches the doc?"
    assert any(path == "src/refrl/losses.py" for path, _ in refs)


@pytest.mark.parametrize(("path", "name"), _references(), ids=lambda x: x)
def test_math_doc_reference_exists(path, name):
    file = ROOT / path
    assert file.is_file(), f"docs/math.md cites {path}::{name}, but {path} does not exist"
    if file.suffix == ".py":
        assert name in _python_names(file), f"docs/math.md cites {path}::{name}: not defined in {path}"
    else:
        text = file.read_text(encoding="utf-8")
        assert re.search(rf"\b{re.escape(name)}\b", text), f"docs/math.md cites {path}::{name}: not in {path}"


def test_math_doc_speaks_of_the_project_alone():
    text = DOC.read_text(encoding="utf-8")
    assert not re.search(r"issue\s*#\s*\d", text, re.IGNORECASE)
    assert "DESIGN.md" not in text and "STYLE.md" not in text
