"""Imports go one way: no module imports from a layer above its own, at the top of a file or inside a function.

Layers, lowest first (a module may import its own layer and those below it):

    base -> market -> network -> generators -> envs -> front -> diagnostics -> agents -> experiments -> cli

``base`` is ``p2penv.aliases`` (the deprecated-name helper, which imports nothing of the package). ``front`` is the env modules and the registry at the top of the package (``p2penv``, ``p2penv.auction_v0``,
``p2penv.dlmp_v0``, ``p2penv.registry``, ``p2penv.seller_buyer``): they build envs, so they sit right above
``p2penv.envs``. The repository folders ``agents/`` and ``experiments/`` install as ``p2penv.agents`` and
``p2penv.experiments`` (``[tool.setuptools.package-dir]`` in pyproject.toml); the test maps them the same way.

Every ``.py`` file is parsed with ``ast``; ``import x`` and ``from x import y`` anywhere in it count (relative
imports resolved; ``from p2penv import auction_v0`` targets the module ``p2penv.auction_v0``), and so does
``importlib.import_module("...")`` with a literal name.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> import name of the package it holds (pyproject.toml's package-dir)
FOLDERS = {"p2penv": "p2penv", "agents": "p2penv.agents", "experiments": "p2penv.experiments"}
LAYERS = ("base", "market", "network", "generators", "envs", "front", "diagnostics", "agents", "experiments", "cli")
BASE = {"p2penv.aliases"}  # imports nothing from the package: every layer may use it
FRONT = {"p2penv", "p2penv.auction_v0", "p2penv.dlmp_v0", "p2penv.registry", "p2penv.seller_buyer"}
# (importer, imported) edges that still go up, each with the reason it is allowed for now
KNOWN_UPWARD: dict[tuple[str, str], str] = {}  # none today; an entry must name its reason


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = FOLDERS[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str | None:
    """Layer name of a p2penv module (None for a module outside the package)."""
    if module != "p2penv" and not module.startswith("p2penv."):
        return None
    if module in BASE:
        return "base"
    if module in FRONT:
        return "front"
    sub = module.split(".")[1]
    if sub == "cli":
        return "cli"
    if sub not in LAYERS:
        raise AssertionError(f"{module}: not in any layer; add it to LAYERS or FRONT in {Path(__file__).name}")
    return sub


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``source`` (the code of ``module``)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:  # ``from pkg import mod`` imports the module pkg.mod
                sub = f"{target}.{a.name}"
                out.append((sub if sub in known else target, node.lineno))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.args[0].value, node.lineno))
    return out


def upward_edges(files: dict[str, tuple[str, bool]]) -> list[str]:
    """``importer:line -> imported (layer -> higher layer)`` for every upward edge; ``files``: module ->
    (source, is_package)."""
    known = set(files)
    bad = []
    for mod, (src, is_pkg) in sorted(files.items()):
        here = LAYERS.index(layer(mod))
        for target, line in imported_modules(src, mod, is_pkg, known):
            there = layer(target)
            if there is None or LAYERS.index(there) <= here or (mod, target) in KNOWN_UPWARD:
                continue
            bad.append(f"{mod}:{line} -> {target} ({layer(mod)} -> {there})")
    return bad


def package_files() -> dict[str, tuple[str, bool]]:
    files = {}
    for folder in FOLDERS:
        for p in sorted((ROOT / folder).rglob("*.py")):
            files[module_name(p)] = (p.read_text(encoding="utf-8"), p.name == "__init__.py")
    return files


def test_no_module_imports_from_a_higher_layer():
    bad = upward_edges(package_files())
    assert not bad, "imports that go up a layer (" + " -> ".join(LAYERS) + "):\n" + "\n".join(bad)


def test_known_upward_edges_still_exist():
    """An allowed exception that was fixed must leave KNOWN_UPWARD, so the list cannot go stale."""
    files = package_files()
    known = set(files)
    for mod, target in KNOWN_UPWARD:
        assert mod in files, mod
        assert target in {t for t, _ in imported_modules(files[mod][0], mod, files[mod][1], known)}, \
            f"{mod} no longer imports {target}: remove it from KNOWN_UPWARD"


@pytest.mark.parametrize("source, module, is_pkg, expected", [
    ("def f():\n    from p2penv.agents.vector_ppo import train_vector_ppo\n", "p2penv.diagnostics.x", False,
     ["p2penv.diagnostics.x:2 -> p2penv.agents.vector_ppo (diagnostics -> agents)"]),
    ("from p2penv import auction_v0\n", "p2penv.generators.x", False,
     ["p2penv.generators.x:1 -> p2penv.auction_v0 (generators -> front)"]),
    ("from ..experiments import metrics\n", "p2penv.agents.x", False,
     ["p2penv.agents.x:1 -> p2penv.experiments.metrics (agents -> experiments)"]),
    ("from ...experiments.metrics import f\n", "p2penv.agents.sub.x", False,
     ["p2penv.agents.sub.x:1 -> p2penv.experiments.metrics (agents -> experiments)"]),
    ("import importlib\nimportlib.import_module('p2penv.cli')\n", "p2penv.envs.x", False,
     ["p2penv.envs.x:2 -> p2penv.cli (envs -> cli)"]),
    ("from ..market.pipeline import run_step\nimport numpy\n", "p2penv.envs.x", False, []),
    ("from . import auction_v0\n", "p2penv", True, []),
])
def test_the_checker_flags_upward_imports(source, module, is_pkg, expected):
    """The checker itself: an upward import inside a function, through a package, relative or by
    ``import_module`` is caught; downward and same-layer imports are not."""
    known = {"p2penv.auction_v0", "p2penv.agents.vector_ppo", "p2penv.experiments.metrics"}
    files = {module: (source, is_pkg)} | {k: ("", False) for k in known}
    assert upward_edges(files) == expected
