"""The package's layering, checked statically with ``ast`` over every module of src/refrl.

* Only the native-binding modules import the compiled core ``refrl._core``.
* No module imports a private (leading-underscore) name from another module, or reaches into a
  private attribute of another module's object where that can be seen statically
  (``kernels._adam_call``, ``policy._check_actions``, ``policy.dist._index``).
* Nothing imports upward: a module imports only modules of its own layer or of layers below it
  (docs/design.md gives the layers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import refrl

SRC = Path(refrl.__file__).resolve().parent

# Top to bottom. A module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("refrl", "refrl.__main__", "refrl.cli", "refrl.runs", "refrl.plots", "refrl.selfcheck"),
    ("refrl.algos",),  # and every refrl.algos.* module
    ("refrl.rlhf",),  # and every refrl.rlhf.* module
    ("refrl.callbacks",),  # learn()'s hooks: above evaluation, below the algorithms that call them
    ("refrl.evaluation", "refrl.progress", "refrl.threads"),
    ("refrl.rollout",),
    ("refrl.native",),  # policy-aware native pieces, above the policy
    ("refrl.policy",),
    ("refrl.losses",),
    ("refrl.nn", "refrl.distributions", "refrl.optim", "refrl.normalization"),
    ("refrl.kernels",),  # the array kernels
    ("refrl._checks",),
    ("refrl.oracle",),  # bottom layer of the maths: imports none of the above
    ("refrl.config", "refrl.serialization", "refrl.logger", "refrl._types", "refrl.distributed", "refrl._paths",
     "refrl.health", "refrl.tensorboard"),  # leaves: import nothing of refrl
]
# Modules that bind the compiled core. selfcheck checks the installed core itself (it builds its
# dense test operators and reports the core's file), so it names it too.
CORE_USERS = {"refrl.kernels", "refrl.native", "refrl.selfcheck"}
# The one allowed upward import: kernels re-exports native's Fisher operator lazily, in a function.
LAZY_UPWARD = {("refrl.kernels", "refrl.native")}
# Underscore names that are public by convention (NamedTuple's API).
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_field_defaults", "_make"}
PRIVATE_MODULES = {"refrl._core", "refrl._checks", "refrl._types"}
def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    for rank, group in enumerate(LAYERS):
        for name in group:
            if module == name or (name in ("refrl.algos", "refrl.rlhf") and module.startswith(name + ".")):
                return rank
    raise AssertionError(f"{module} is not placed in a layer: add it to LAYERS in tests/test_layers.py")


def _imports(tree: ast.Module, module: str):
    """(imported module, imported name or None, line, at module level) for every refrl import."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "refrl":
                    yield alias.name, None, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "refrl":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES or sub == "refrl._core":  # `from refrl import kernels`: a module
                    yield sub, None, node.lineno, id(node) in top_level
                else:
                    yield base, alias.name, node.lineno, id(node) in top_level


def _parse(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))


def test_every_module_has_a_layer():
    assert "refrl.native" in MODULES and "refrl._checks" in MODULES
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_binding_modules_import_the_compiled_core(module):
    bad = []
    for target, name, line, _ in _imports(_parse(module), module):
        if (target == "refrl._core" or target.startswith("refrl._core.")) and module not in CORE_USERS:
            bad.append(f"{module}:{line} imports refrl._core")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module):
    bad = []
    for target, name, line, _ in _imports(_parse(module), module):
        if name is not None and name.startswith("_") and not name.startswith("__"):
            bad.append(f"{module}:{line} imports the private name {name} from {target}")
    assert not bad, "\n".join(bad)


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Underscore names this module defines itself (functions, classes, attributes, variables)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_attribute_of_another_modules_object_is_used(module):
    """``x._name`` is allowed on ``self``/``cls`` and for names this module defines itself;
    ``kernels._adam_call`` (a module) or ``policy._check_actions`` (another module's object) is not."""
    tree = _parse(module)
    own = _defined_private_names(tree)
    refrl_modules, other_modules = set(), set()  # names bound to imported modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "refrl":
            refrl_modules |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in set(MODULES) | {"refrl._core"}}
        elif isinstance(node, ast.Import):
            for a in node.names:
                (refrl_modules if a.name.split(".")[0] == "refrl" else other_modules).add(a.asname or a.name.split(".")[0])
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__") or attr in PUBLIC_UNDERSCORE:
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in refrl_modules:
            bad.append(f"{module}:{node.lineno} uses {base.id}.{attr}, a private name of another module")
        elif isinstance(base, ast.Name) and base.id in other_modules | {"self", "cls"}:
            continue  # its own attributes; a third-party module's internals are not refrl's layering
        elif attr not in own:
            bad.append(f"{module}:{node.lineno} uses .{attr} of an object from another module ({ast.unparse(node)})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_a_higher_layer(module):
    rank = _layer(module)
    bad = []
    for target, _, line, top_level in _imports(_parse(module), module):
        if target in PRIVATE_MODULES and target not in MODULES:  # refrl._core: checked above
            continue
        target_module = target
        while target_module not in MODULES:  # `from refrl.algos.base import X` -> refrl.algos.base
            target_module = target_module.rpartition(".")[0]
        if _layer(target_module) >= rank or target_module == "refrl":
            continue
        if (module, target_module) in LAZY_UPWARD and not top_level:
            continue
        bad.append(f"{module}:{line} (layer {rank}) imports {target_module} (layer {_layer(target_module)}), above it")
    assert not bad, "\n".join(bad)


def test_importing_kernels_imports_nothing_above_it():
    """kernels' lazy re-export of the Fisher operator must not load native/policy at import time."""
    import subprocess
    import sys

    code = "import sys, refrl.kernels; print(sorted(m for m in sys.modules if m.startswith('refrl')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))  # noqa: S307 (our own subprocess's printed list)
    assert loaded <= {"refrl", "refrl._paths", "refrl.kernels", "refrl._checks", "refrl._types", "refrl._core"}, loaded
    code = "import refrl.kernels as k, refrl.native as n; assert k.fisher_operator is n.fisher_operator; " \
           "assert k.fisher_vector_product is n.fisher_vector_product; assert 'fisher_operator' in dir(k)"
    subprocess.run([sys.executable, "-c", code], check=True)
