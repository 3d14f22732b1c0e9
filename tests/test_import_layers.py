"""app.py wires the parts; no part it imports may import app.py back (an import circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import orderdesk_mcp

PACKAGE_DIR = Path(orderdesk_mcp.__file__).parent


def _module_path(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE_DIR / "__init__.py"
    relative = Path(*parts)
    for candidate in (
        PACKAGE_DIR / relative.with_suffix(".py"),
        PACKAGE_DIR / relative / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Package modules `path` imports; all of them, or only those run at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("orderdesk_mcp"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("orderdesk_mcp"))
    return {name for name in found if _module_path(name) is not None}


def test_nothing_app_py_imports_imports_app_py_back() -> None:
    # Every package module app.py pulls in at import time, transitively.
    reached: set[str] = set()
    queue = sorted(_imports(PACKAGE_DIR / "app.py", top_level_only=True))
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        reached.add(name)
        path = _module_path(name)
        assert path is not None
        queue.extend(_imports(path, top_level_only=True) - reached)
    assert {
        "orderdesk_mcp.health",
        "orderdesk_mcp.metrics",
        "orderdesk_mcp.mcp.blueprint",
    } <= reached
    offenders = sorted(
        name
        for name in reached
        if "orderdesk_mcp.app" in _imports(_module_path(name) or PACKAGE_DIR, top_level_only=False)
    )
    assert offenders == []
