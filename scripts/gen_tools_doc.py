"""Generate docs/TOOLS.md, the tool reference, from the tool registry.

    python scripts/gen_tools_doc.py          # rewrite docs/TOOLS.md
    python scripts/gen_tools_doc.py --check  # exit 1 if it is out of date (a test runs this)

The page comes from the same definitions MCP clients see in tools/list, so it cannot drift.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing the package.
sys.path.insert(0, str(ROOT))

from orderdesk_mcp.mcp.registry import TOOLSETS, all_tools  # noqa: E402

TOOLS_DOC_PATH = ROOT / "docs" / "TOOLS.md"

HEADER = """\
# Tools

Generated from the tool registry (`orderdesk_mcp/mcp/tools/`) by `scripts/gen_tools_doc.py`;
a test fails when this page is out of date. Every tool takes an optional `store` (an alias or
Order Desk store id; default: the tenant's default store). Read-only keys see only the tools
marked read-only; a key or the `X-MCP-Toolsets` request header can narrow the toolsets.
Hints: RO = readOnlyHint, D = destructiveHint, I = idempotentHint, W = openWorldHint.
"""


def _hints(annotations: dict[str, Any]) -> str:
    names = (
        ("readOnlyHint", "RO"),
        ("destructiveHint", "D"),
        ("idempotentHint", "I"),
        ("openWorldHint", "W"),
    )
    return " ".join(short for key, short in names if annotations.get(key)) or "-"


def _arguments(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    names = [
        f"`{name}`" + ("" if name in required else "?")
        for name in schema.get("properties", {})
        if name != "store"
    ]
    return ", ".join(names) or "-"


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)")


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = _SENTENCE_END.search(flat)
    return flat if end is None else flat[: end.end()]


def render_tools_doc() -> str:
    lines = [HEADER]
    tools = [tool.to_mcp() for tool in all_tools()]
    by_toolset: dict[str, list[dict[str, Any]]] = {}
    for tool, definition in zip(all_tools(), tools, strict=True):
        by_toolset.setdefault(tool.toolset, []).append(definition)
    for toolset, description in TOOLSETS.items():
        lines.append(f"## `{toolset}`: {description}\n")
        lines.append("| tool | arguments (? = optional) | hints | what it does |")
        lines.append("|---|---|---|---|")
        for definition in by_toolset.get(toolset, []):
            lines.append(
                f"| `{definition['name']}` | {_arguments(definition['inputSchema'])} "
                f"| {_hints(definition['annotations'])} "
                f"| {_first_sentence(definition['description'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/TOOLS.md is stale")
    options = parser.parse_args()
    rendered = render_tools_doc()
    if options.check:
        current = TOOLS_DOC_PATH.read_text(encoding="utf-8") if TOOLS_DOC_PATH.exists() else ""
        if current != rendered:
            print("docs/TOOLS.md is out of date: run python scripts/gen_tools_doc.py")
            return 1
        return 0
    TOOLS_DOC_PATH.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
