"""Every path answers errors in JSON: no HTML pages, no tracebacks."""

from __future__ import annotations

from flask import Flask


def test_unknown_path_and_wrong_method_are_json(mcp_app: Flask) -> None:
    client = mcp_app.test_client()
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.get_json()["status"] == 404
    wrong = client.post("/health")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"] == "Method Not Allowed"
    assert "GET" in wrong.headers["Allow"]


def test_a_bug_outside_mcp_is_a_json_500_with_the_request_id(mcp_app: Flask) -> None:
    @mcp_app.get("/explode")
    def explode() -> str:
        raise RuntimeError("secret internals")

    reply = mcp_app.test_client().get("/explode", headers={"X-Request-ID": "req-42"})
    assert reply.status_code == 500
    body = reply.get_json()
    assert body["request_id"] == "req-42"
    assert "secret internals" not in reply.get_data(as_text=True)
