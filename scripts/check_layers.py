#!/usr/bin/env python3
"""Check that prefrl's packages import only from the layers below them (docs/architecture.md).

Every ``prefrl/**/*.py`` is parsed with :mod:`ast`; every import of a prefrl module
counts, at any depth: at the top of a module, inside a function, under
``if TYPE_CHECKING:``. Fails (exit status 1) with one line per problem:

* an import of a higher layer: ``prefrl/x.py:LINE imports prefrl.y (layer N above layer M)``;
* an import of another unit of the same layer that :data:`SIDEWAYS` does not allow
  (units of a layer are independent of each other unless the table says otherwise);
* a module missing from :data:`LAYERS`;
* an import cycle between modules (the bench's grid <- outdir <- results <- report <-
  runner is a chain, not a ring).

Usage: ``python scripts/check_layers.py [ROOT]`` (ROOT: the repository, default: this
script's parent's parent). Needs nothing but the standard library.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The one table: each unit (a package or a top-level module) and its layer. A module
# belongs to the longest unit its name starts with. Layer 1 is the ground floor.
LAYERS: dict[str, int] = {
    # 1: plain data, interfaces and helpers; imports nothing above itself
    "prefrl": 1,  # the package's __init__: __version__ (its lazy attributes import by name at use)
    "prefrl.errors": 1,
    "prefrl.interfaces": 1,  # the reward-source protocol
    "prefrl.utils": 1,
    "prefrl.rundir": 1,  # the run directory's files (config, status, summary) and its lock
    "prefrl.metrics": 1,  # metrics.csv: its logger and readers
    "prefrl.status": 1,  # status.json's one type (RunStatus)
    # 2: environments and the preference record
    "prefrl.envs": 2,
    "prefrl.prefs": 2,
    # 3: what learns, judges and draws; mutually independent
    "prefrl.agent": 3,
    "prefrl.reward": 3,
    "prefrl.oracles": 3,
    "prefrl.render": 3,
    "prefrl.task_library": 2,  # the built-in tasks' scripted persons and measures
    "prefrl.task_spec": 2,  # what a task is: Task, its measures, its env's wrappers
    "prefrl.tasks": 3,  # a behaviour task: an env wrapper plus a scripted person's taste
    "prefrl.plotting": 3,  # learning curves from metrics.csv
    # 4: the three roles and the backends that run them
    "prefrl.runtime": 4,
    # 5: what a user runs: the labelling window, benchmarks, the command line
    "prefrl.ui": 5,
    "prefrl.bench": 5,
    "prefrl.baseline": 5,
    "prefrl.fit_reward": 5,
    "prefrl.play": 5,
    "prefrl.upgrade": 5,
    "prefrl.cli": 5,
}

# Imports between different units of the same layer that are allowed (importer, imported).
# Kept acyclic: the check also fails on a cycle.
SIDEWAYS: dict[tuple[str, str], str] = {
    ("prefrl.utils", "prefrl.errors"): "checkpoint errors are PrefrlErrors",
    ("prefrl.rundir", "prefrl.errors"): "run-directory errors are PrefrlErrors",
    ("prefrl.rundir", "prefrl.utils"): "atomic writes",
    ("prefrl.rundir", "prefrl.status"): "status.json of a dead run",
    ("prefrl.metrics", "prefrl.rundir"): "a refused write names the run and how to go on",
    ("prefrl.metrics", "prefrl.utils"): "atomic writes",
    ("prefrl.bench", "prefrl.baseline"): "a grid's PPO cells run the baseline command",
    ("prefrl.cli", "prefrl.ui"): "prefrl label",
    ("prefrl.cli", "prefrl.bench"): "prefrl bench / report",
    ("prefrl.cli", "prefrl.baseline"): "prefrl baseline",
    ("prefrl.cli", "prefrl.play"): "prefrl play",
    ("prefrl.cli", "prefrl.fit_reward"): "prefrl fit-reward",
    ("prefrl.cli", "prefrl.upgrade"): "prefrl upgrade / resume",
}


@dataclass(frozen=True)
class Import:
    path: Path  # the importing file, relative to the root
    line: int
    source: str  # the importing module
    target: str  # the imported module


def module_name(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """The unit of :data:`LAYERS` that ``module`` belongs to (longest prefix; the unit
    ``prefrl`` is only the package's ``__init__``), if any."""
    best = None
    for unit in LAYERS:
        inside = module == unit or (unit != "prefrl" and module.startswith(unit + "."))
        if inside and (best is None or len(unit) > len(best)):
            best = unit
    return best


def imports_of(root: Path, path: Path, modules: set[str]) -> Iterator[Import]:
    """Every prefrl import in the file ``root / path``, at any depth."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "prefrl" or alias.name.startswith("prefrl."):
                    yield Import(path, node.lineno, source, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "prefrl" or target.startswith("prefrl.")):
                continue
            for alias in node.names:
                # `from prefrl.render import frames` imports the module prefrl.render.frames
                sub = f"{target}.{alias.name}"
                yield Import(path, node.lineno, source, sub if sub in modules else target)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def check(root: Path) -> list[str]:
    """The problems found under ``root / "prefrl"``, one line each (empty: all is well)."""
    files = sorted(p.relative_to(root) for p in (root / "prefrl").rglob("*.py"))
    modules = {module_name(p) for p in files}
    problems: list[str] = []
    for path in files:
        if unit_of(module_name(path)) is None:
            problems.append(
                f"{path}: {module_name(path)} is in no layer; add it to LAYERS in scripts/check_layers.py"
            )
    graph: dict[str, set[str]] = {}
    for path in files:
        for imp in sorted(imports_of(root, path, modules), key=lambda i: i.line):
            src_unit, dst_unit = unit_of(imp.source), unit_of(imp.target)
            if imp.target != imp.source:
                graph.setdefault(imp.source, set()).add(imp.target)
            if src_unit is None or dst_unit is None or src_unit == dst_unit:
                continue
            src_layer, dst_layer = LAYERS[src_unit], LAYERS[dst_unit]
            where = f"{imp.path}:{imp.line} imports {imp.target}"
            if dst_layer > src_layer:
                problems.append(f"{where} (layer {dst_layer} above layer {src_layer})")
            elif dst_layer == src_layer and (src_unit, dst_unit) not in SIDEWAYS:
                problems.append(
                    f"{where} (layer {dst_layer} beside layer {src_layer}: {src_unit} and {dst_unit} are "
                    "independent; move the shared part down a layer)"
                )
    for ring in cycles(graph):
        problems.append(f"import cycle between modules: {' <-> '.join(ring)}")
    sideways: dict[str, set[str]] = {}
    for src, dst in SIDEWAYS:
        sideways.setdefault(src, set()).add(dst)
    for ring in cycles(sideways):
        problems.append(f"SIDEWAYS allows a cycle: {' <-> '.join(ring)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    problems = check(root)
    if problems:
        print(f"check_layers: {len(problems)} problem(s) (layers: docs/architecture.md)", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"check_layers: {len(LAYERS)} units in 5 layers, no import reaches up or sideways, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
