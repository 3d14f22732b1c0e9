"""Generate systemd/orderdesk-mcp.env.example and docs/SETTINGS.md from config.SETTINGS.

    python scripts/gen_env_example.py          # rewrite both files
    python scripts/gen_env_example.py --check  # exit 1 if either is out of date (CI)

Both files come from the one list of settings, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing the package.
sys.path.insert(0, str(ROOT))

from orderdesk_mcp.config import SETTINGS, SettingSpec  # noqa: E402

ENV_EXAMPLE_PATH = ROOT / "systemd" / "orderdesk-mcp.env.example"
SETTINGS_DOC_PATH = ROOT / "docs" / "SETTINGS.md"

# Values a bare-metal install behind nginx sets explicitly; everything else stays at its
# default (shown commented out).
DEPLOYMENT_VALUES: dict[str, str] = {
    "ORDERDESK_MCP_DATA_DIR": "/var/lib/orderdesk-mcp",
    "ORDERDESK_MCP_HOST": "127.0.0.1",
    "ORDERDESK_MCP_PORT": "8080",
    "ORDERDESK_MCP_TRUSTED_PROXY": "127.0.0.1",
}

# Defaults that depend on the machine generating the file are shown as their rule instead.
PORTABLE_DEFAULTS: dict[str, str] = {
    "ORDERDESK_MCP_DATA_DIR": "$XDG_DATA_HOME/orderdesk-mcp",
}

ENV_HEADER = """\
# /etc/orderdesk-mcp/orderdesk-mcp.env: settings of the orderdesk-mcp service.
# Generated from orderdesk_mcp/config.py by scripts/gen_env_example.py; do not edit the
# example by hand. Keep the installed copy root-owned, mode 0600: it can hold secrets.
# Syntax: systemd EnvironmentFile (KEY=VALUE, # comments). A commented line shows the
# default. The master key is NOT set here: systemd passes /etc/orderdesk-mcp/master-key to
# the service as a credential (LoadCredential=master-key:...).
"""

DOC_HEADER = """\
# Settings

Generated from `orderdesk_mcp/config.py` by `scripts/gen_env_example.py`; a test fails when
this page is out of date. Every setting is an environment variable; the service reads them
from `/etc/orderdesk-mcp/orderdesk-mcp.env` (template: `systemd/orderdesk-mcp.env.example`),
and the command line takes `--env-file FILE`. Precedence: command-line flags, then the
environment, then the env file, then the defaults below. An unknown `ORDERDESK_MCP_*`
variable stops start-up with an error naming it.

| Variable | Default | Meaning |
|---|---|---|
"""


def _default_shown(spec: SettingSpec) -> str:
    return PORTABLE_DEFAULTS.get(spec.env, spec.default_text())


def render_env_example() -> str:
    blocks = [ENV_HEADER]
    for spec in SETTINGS:
        comment = textwrap.fill(spec.help, width=92, initial_indent="# ", subsequent_indent="# ")
        if spec.secret:
            comment += "\n# Secret: keep this file mode 0600."
        if spec.env in DEPLOYMENT_VALUES:
            line = f"{spec.env}={DEPLOYMENT_VALUES[spec.env]}"
        else:
            line = f"#{spec.env}={_default_shown(spec)}"
        blocks.append(f"{comment}\n{line}\n")
    return "\n".join(blocks)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_settings_doc() -> str:
    rows = []
    for spec in SETTINGS:
        default = _default_shown(spec)
        shown = f"`{_markdown_cell(default)}`" if default else "(empty)"
        meaning = _markdown_cell(spec.help) + (" Secret." if spec.secret else "")
        rows.append(f"| `{spec.env}` | {shown} | {meaning} |")
    return DOC_HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    outputs = {ENV_EXAMPLE_PATH: render_env_example(), SETTINGS_DOC_PATH: render_settings_doc()}
    stale = []
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(
            f"{path.relative_to(ROOT)} is out of date; run python scripts/gen_env_example.py",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
