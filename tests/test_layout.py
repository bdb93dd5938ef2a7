"""Architecture rules, checked from the source with ``ast`` (nothing under ``src/transact`` is imported).

Imports inside ``if TYPE_CHECKING:`` blocks are ignored; imports inside functions count.
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "transact"
MAX_LINES = 600
ISSUE_RE = re.compile(r"\bissue\s*#?\d+|\(issue \d+\)", re.IGNORECASE)

FACADE_LEVEL = (
    "transact._facade",
    "transact._dbos",
    "transact._queue",
    "transact._client",
    "transact._handles",
    "transact.integrations",
    "transact.cli",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return _modules()[name].name == "__init__.py" if name in _modules() else False


def _exists(name: str) -> bool:
    return name in _modules()


def _resolve(name: str) -> str | None:
    """The longest existing module prefix of a dotted name (``transact.x.Class`` -> ``transact.x``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if _exists(candidate):
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import under ``node``, at any depth, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    yield sub
                yield from _import_nodes(sub)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def _base_of_relative(module: str, level: int) -> str:
    package = module if _is_package(module) else module.rpartition(".")[0]
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts)


@cache
def _imports(module: str) -> tuple[tuple[str, int], ...]:
    """The transact modules ``module`` imports, each with the line of the import."""
    path = _modules()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "transact" or alias.name.startswith("transact."):
                    target = _resolve(alias.name)
                    if target:
                        found.append((target, node.lineno))
            continue
        if node.level:
            base = _base_of_relative(module, node.level)
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if not (source == "transact" or source.startswith("transact.")):
            continue
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            target = sub if _exists(sub) else _resolve(source)
            if target:
                found.append((target, node.lineno))
    return tuple(found)


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m) if t != m} for m in _modules()}


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete import cycle through the component's first module (shortest, by BFS)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in seen:
                    seen.add(child)
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return component


def _where(module: str, target: str) -> str:
    path = _modules()[module].relative_to(SRC.parent)
    lines = sorted({line for t, line in _imports(module) if t == target})
    return ", ".join(f"{path}:{line}" for line in lines)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_source_tree_is_found() -> None:
    assert "transact" in _modules()
    assert "transact._lib.backoff" in _modules()
    assert "transact.storage" in _modules()


def test_import_resolution_examples() -> None:
    # guards for the helpers, so the rules below cannot pass vacuously
    assert _resolve("transact.errors.TransactError") == "transact.errors"
    assert _resolve("transact.storage") == "transact.storage"
    assert any(t.startswith("transact.") for m in _modules() for t, _ in _imports(m))


def test_no_import_cycles() -> None:
    graph = _graph()
    problems = []
    for component in _sccs(graph):
        if len(component) > 1:
            cycle = _cycle_in(component, graph)
            hops = [f"  {a} -> {b}  ({_where(a, b)})" for a, b in itertools.pairwise(cycle)]
            edges = [f"    {a} -> {b}  ({_where(a, b)})" for a in component for b in sorted(graph[a] & set(component))]
            problems.append(
                f"cycle {' -> '.join(cycle)}\n"
                + "\n".join(hops)
                + f"\n  component {component}, all its edges:\n"
                + "\n".join(edges)
            )
    assert not problems, "import cycles among src/transact modules:\n" + "\n".join(problems)


def _violations(prefix: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    out = []
    for module in _modules():
        if not _under(module, prefix):
            continue
        for target, line in _imports(module):
            if any(_under(target, a) for a in allowed):
                continue
            if any(_under(target, f) for f in forbidden):
                out.append(f"{_modules()[module].relative_to(SRC.parent)}:{line} imports {target}")
    return sorted(set(out))


def test_engine_and_storage_do_not_import_facade_level() -> None:
    bad = _violations("transact.engine", FACADE_LEVEL) + _violations("transact.storage", FACADE_LEVEL)
    assert not bad, "engine/storage must not import facade-level modules:\n" + "\n".join(bad)


def test_storage_does_not_import_engine() -> None:
    bad = _violations("transact.storage", ("transact.engine",))
    assert not bad, "storage must not import the engine:\n" + "\n".join(bad)


def test_lib_imports_only_errors() -> None:
    bad = _violations("transact._lib", ("transact",), allowed=("transact._lib", "transact.errors"))
    assert not bad, "transact/_lib may import only transact.errors:\n" + "\n".join(bad)


def test_no_retired_top_level_modules() -> None:
    stray = sorted(str(p.relative_to(SRC.parent)) for p in PKG.glob("_facade_*.py"))
    if (PKG / "_current.py").exists():
        stray.append("src/transact/_current.py")
    assert not stray, f"retired modules still present: {stray}"


def test_no_module_too_long() -> None:
    long = []
    for path in _modules().values():
        count = len(path.read_text().splitlines())
        if count > MAX_LINES:
            long.append(f"{path.relative_to(SRC.parent)}: {count} lines")
    assert not long, f"modules longer than {MAX_LINES} lines:\n" + "\n".join(long)


def _docstrings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                value = body[0].value.value
                if isinstance(value, str):
                    yield body[0].lineno, value


def _comments(text: str) -> Iterator[tuple[int, str]]:
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string


def test_no_issue_numbers_in_docstrings_or_comments() -> None:
    hits = []
    for path in _modules().values():
        text = path.read_text()
        rel = path.relative_to(SRC.parent)
        for lineno, doc in _docstrings(ast.parse(text)):
            for offset, line in enumerate(doc.splitlines()):
                for match in ISSUE_RE.finditer(line):
                    hits.append(f"{rel}:{lineno + offset} docstring mentions {match.group(0)!r}")
        for lineno, comment in _comments(text):
            for match in ISSUE_RE.finditer(comment):
                hits.append(f"{rel}:{lineno} comment mentions {match.group(0)!r}")
    assert not hits, "issue numbers in docstrings/comments:\n" + "\n".join(hits)
