"""The package's import graph, read from the source (for tests/test_structure.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kiwoom_rt"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _in_getattr_shim(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside a module's ``__getattr__`` (an old import path kept working, lazily)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return True
    return False


def imports(name: str, *, lazy: bool = True) -> tuple[set[str], set[str]]:
    """(modules of the package, outside top-level modules) that ``name`` imports; ``lazy=False``
    leaves out imports inside functions. ``TYPE_CHECKING`` blocks and ``__getattr__`` shims are
    never counted: they run nothing at import time or on the module's own paths."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if _type_checking_only(node, parents) or _in_getattr_shim(node, parents):
            continue
        if not lazy and any(isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef))
                            for p in _ancestors(node, parents)):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                (inside if alias.name in MODULES else outside).add(
                    alias.name if alias.name in MODULES else alias.name.split(".")[0])
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target.split(".")[0] != "kiwoom_rt":
            outside.add(target.split(".")[0])
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            inside.add(sub if sub in MODULES else target)
    inside.discard(name)
    return inside, outside


def _ancestors(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[ast.AST]:
    found = []
    while node in parents:
        node = parents[node]
        found.append(node)
    return found


def reachable(start: str) -> set[str]:
    """Every module of the package ``start``'s code imports, followed transitively (itself
    included). The packages around a module are not counted: Python runs their ``__init__``
    first, but the module's code does not depend on them."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(imports(name)[0])
    return seen


def cycles(*, lazy: bool) -> list[list[str]]:
    """Strongly connected groups of more than one module."""
    graph = {name: imports(name, lazy=lazy)[0] for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return found
