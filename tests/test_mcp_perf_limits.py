"""flask-limiter after tuning: no per-request hooks on the served app, the same per-key limits."""

from __future__ import annotations

from typing import Any

from flask import Flask

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp import blueprint
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app
from tests.test_mcp_http import McpHttp, error_of


def _hook_owners(app: Flask) -> list[str]:
    hooks = [
        *app.before_request_funcs.get(None, []),
        *app.after_request_funcs.get(None, []),
        *app.teardown_request_funcs.get(None, []),
    ]
    owners = []
    for hook in hooks:
        target = getattr(hook, "func", hook)  # functools.partial keeps the function in .func
        owners.append(getattr(target, "__module__", "") or "")
    return owners


def test_the_served_app_runs_no_flask_limiter_hook(mcp_app: Flask) -> None:
    owners = _hook_owners(mcp_app)
    assert owners, "the app's own hooks (request id, metrics, database) are expected"
    assert not [owner for owner in owners if owner.startswith("flask_limiter")]
    assert "limiter" not in mcp_app.extensions


def test_per_key_limits_still_count_each_key_on_its_own(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault)
    writer = McpHttp(app.test_client(), mcp_tenant.token)
    writer.initialize()  # two requests
    assert [writer.request("ping").status_code for _ in range(3)] == [200, 200, 429]
    assert "rate limit" in error_of(writer.request("ping"))["message"]
    reader = McpHttp(app.test_client(), mcp_tenant.read_only_token)
    reader.initialize()
    assert reader.request("ping").status_code == 200
    # Another app (another process, in production) keeps its own memory:// counters.
    fresh = McpHttp(
        make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault).test_client(),
        mcp_tenant.token,
    )
    fresh.initialize()
    assert fresh.request("ping").status_code == 200
    assert blueprint.state(app).limits.hit_key("someone") is None
