"""The layout's rules (docs/architecture.md), checked over the import graph.

Every ``import`` of the project's modules counts, also one inside a function: a cycle
broken by a late import is still a cycle in the design. An import under
``if TYPE_CHECKING:`` (for annotations only, never run) is left out.

* ``bot.core`` (the domain) never imports the ``telegram`` library, ``bot.telegram``,
  ``bot.devtools``, ``handlers`` or the CLI;
* ``handlers`` never import ``bot.telegram``, ``bot.devtools`` or the CLI, and never
  query the database (no ``select(`` in a handler: queries are the core's);
* ``reports`` never import ``handlers``, ``bot.telegram``, ``bot.devtools``, the CLI or
  the ``telegram`` library;
* ``models`` import nothing of ``bot``, ``handlers`` or ``reports``;
* there is no cycle among the project's modules.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "models", "reports")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    return found


MODULES = project_modules()


def resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a name imported from a package may be a
    module of it or an attribute of the package)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str) -> set[str]:
    """Everything ``name`` imports: project modules and top-level outside packages."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(resolve(alias.name) or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                sub = resolve(f"{target}.{alias.name}")
                if sub == f"{target}.{alias.name}":
                    found.add(sub)
                else:
                    found.add(resolve(target) or target.split(".")[0])
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def offences(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {dep}" for m, deps in GRAPH.items() if under(m, layer)
                  for dep in deps if any(under(dep, f) for f in forbidden))


def test_the_graph_sees_the_layers():
    # a check over an empty or wrongly parsed graph would pass whatever the code does
    assert "bot.core.workflow" in MODULES and "bot.telegram.intake" in MODULES
    assert "handlers.data_entry" in MODULES and "reports.pdf" in MODULES
    assert "bot.core.workflow" in GRAPH["handlers.data_entry"]
    assert "telegram" in GRAPH["bot.telegram.app"]
    assert "models" in GRAPH["bot.core.workflow"] or any(
        under(d, "models") for d in GRAPH["bot.core.workflow"])


def test_core_knows_nothing_of_telegram_nor_of_the_layers_above():
    assert offences("bot.core", ("telegram", "bot.telegram", "bot.devtools", "handlers",
                                 "bot.cli")) == []


def test_handlers_never_reach_into_the_runtime():
    assert offences("handlers", ("bot.telegram", "bot.devtools", "bot.cli")) == []


def test_reports_are_builders_over_plain_data():
    assert offences("reports", ("handlers", "bot.telegram", "bot.devtools", "bot.cli",
                                "telegram")) == []


def test_models_stand_alone():
    assert offences("models", ("bot", "handlers", "reports")) == []


def test_handlers_run_no_query():
    found = sorted(f"{name}: line {node.lineno}" for name, path in MODULES.items()
                   if under(name, "handlers")
                   for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                   and node.func.id == "select")
    assert found == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(d for d in graph[root] if d in graph)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(d for d in graph[child] if d in graph))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
    return result


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    # package __init__ modules are left out: importing bot.core.x loads bot.core first,
    # which is not a dependency of the design
    graph = {m: {d for d in deps if d in GRAPH and MODULES[d].name != "__init__.py"}
             for m, deps in GRAPH.items()}
    assert strongly_connected(graph) == []
