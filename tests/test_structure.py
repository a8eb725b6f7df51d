"""The shape of the code, checked: sans-I/O modules stay free of threads, sockets and clocks; no
module reaches into another's private names; tests do not set private attributes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kiwoom_rt"
FORBIDDEN_IMPORTS = {"threading", "socket", "select", "asyncio", "ssl"}
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}  # public, underscored to avoid field clashes


def sans_io_modules() -> list[Path]:
    """The list in docs/design.md (the line that starts "Sans-I/O modules")."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    match = re.search(r"^Sans-I/O modules[^:]*:(.*?)(?:\n\n)", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/design.md lists the sans-I/O modules on a line starting 'Sans-I/O modules'"
    names = re.findall(r"`([\w/]+\.py)`", match.group(1))
    assert len(names) >= 10
    return [PACKAGE / name for name in names]


def test_sans_io_modules_import_no_thread_socket_or_clock() -> None:
    for path in sans_io_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
                assert not names & FORBIDDEN_IMPORTS, f"{path.name} imports {names & FORBIDDEN_IMPORTS}"
                assert "time" not in names, f"{path.name} imports time (a clock): take `now` as an argument"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] not in FORBIDDEN_IMPORTS | {"time"}, \
                    f"{path.name} imports from {node.module}"


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines itself: functions, classes, methods, attributes it sets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_no_module_uses_another_modules_private_names() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _defined_private_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module is not None:  # `from . import _json`: a module
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"{path.relative_to(ROOT)}: imports {alias.name} from {node.module}")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                    continue
                if node.attr not in own and node.attr not in NAMEDTUPLE_API:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {ast.unparse(node)}")
    assert problems == []


def test_tests_do_not_set_private_attributes() -> None:
    problems = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr.startswith("_")
                        and not target.attr.startswith("__")
                        and not (isinstance(target.value, ast.Name) and target.value.id == "self")):
                    problems.append(f"{path.name}:{node.lineno}: sets {ast.unparse(target)}")
    assert problems == []
