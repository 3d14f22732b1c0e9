"""Docs that are generated from code stay current, and the README's promises hold."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools_reference_is_current() -> None:
    generator = _load_script("gen_tools_doc")
    current = (ROOT / "docs" / "TOOLS.md").read_text(encoding="utf-8")
    assert current == generator.render_tools_doc(), "run python scripts/gen_tools_doc.py"


def test_every_tool_of_the_design_catalogue_is_documented() -> None:
    text = (ROOT / "docs" / "TOOLS.md").read_text(encoding="utf-8")
    from orderdesk_mcp.mcp.registry import all_tools

    for tool in all_tools():
        assert f"| `{tool.name}` |" in text


def test_readme_links_point_at_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?!https?://)[^)#]+)\)", readme)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


def test_readme_names_the_two_setup_commands_and_ci_calls_make_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme
    assert "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
