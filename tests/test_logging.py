"""Logging: secrets are redacted from messages and fields; every request line carries an id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.config import load_settings
from orderdesk_mcp.errors import init_app as errors_init_app
from orderdesk_mcp.logging import (
    REDACTED,
    configure_logging,
    init_app,
    redact_text,
    register_secret,
)

TENANT_KEY = "odmcp_0123456789ab_" + "Zx9" * 14 + "Q"
STORE_KEY = "od-store-key-5b2d4f607f3a9c1e"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(load_settings({"ORDERDESK_MCP_LOG_FORMAT": "json"}), stream=stream)
    yield stream
    configure_logging(load_settings({"ORDERDESK_MCP_LOG_FORMAT": "text"}))


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_keys_in_the_message_are_redacted(log_stream: io.StringIO) -> None:
    logging.getLogger("t").warning(
        "client sent Authorization: Bearer %s and ORDERDESK-API-KEY: %s", TENANT_KEY, STORE_KEY
    )
    text = log_stream.getvalue()
    assert TENANT_KEY not in text
    assert STORE_KEY not in text
    assert REDACTED in _lines(log_stream)[0]["message"]  # type: ignore[operator]


def test_keys_in_extra_fields_are_redacted_whatever_the_name(log_stream: io.StringIO) -> None:
    logging.getLogger("t").info(
        "call",
        extra={
            "api_key": STORE_KEY,
            "headers": {"Authorization": f"Bearer {TENANT_KEY}", "Accept": "application/json"},
            "note": f"the token was {TENANT_KEY}",
        },
    )
    line = _lines(log_stream)[0]
    assert STORE_KEY not in log_stream.getvalue()
    assert TENANT_KEY not in log_stream.getvalue()
    assert line["api_key"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}


def test_registered_secrets_are_redacted_anywhere(log_stream: io.StringIO) -> None:
    register_secret("plain-looking-value-42")
    logging.getLogger("t").error("failed with plain-looking-value-42 in it")
    assert "plain-looking-value-42" not in log_stream.getvalue()


def test_tracebacks_are_redacted(log_stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"boom with {TENANT_KEY}")
    except RuntimeError:
        logging.getLogger("t").exception("failed")
    assert TENANT_KEY not in log_stream.getvalue()
    assert "RuntimeError" in log_stream.getvalue()


def test_request_id_is_taken_when_well_formed_and_echoed(log_stream: io.StringIO) -> None:
    app = Flask("t")
    init_app(app)

    @app.get("/")
    def index() -> str:
        logging.getLogger("t").info("inside")
        return "ok"

    client = app.test_client()
    response = client.get("/", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert _lines(log_stream)[-1]["request_id"] == "abc-123"

    response = client.get("/", headers={"X-Request-ID": "bad id with spaces"})
    generated = response.headers["X-Request-ID"]
    assert generated != "bad id with spaces"
    assert len(generated) == 16


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60))
def test_a_tenant_key_never_survives_any_surrounding_text(text: str) -> None:
    assert TENANT_KEY not in redact_text(text + TENANT_KEY + text)


ACCESS_TOKEN = "odat_" + "Ab3-_x" * 7
REFRESH_TOKEN = "odrt_" + "Zq9_-y" * 7
INVITE_TOKEN = "Inv1te-t0ken_" + "k" * 30


def test_oauth_tokens_and_invite_links_are_redacted(log_stream: io.StringIO) -> None:
    logging.getLogger("t").warning(
        "saw %s then %s", ACCESS_TOKEN, f"refresh={REFRESH_TOKEN[:5]}x{REFRESH_TOKEN[5:]}"
    )
    logging.getLogger("t").warning("body had %s", REFRESH_TOKEN)
    logging.getLogger("t").error("unhandled error on GET /tenant/invite/%s", INVITE_TOKEN)
    logging.getLogger("t").error(
        "Exception on https://mcp.example/tenant/invite/%s?x=1 [POST]", INVITE_TOKEN
    )
    text = log_stream.getvalue()
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN, INVITE_TOKEN):
        assert secret not in text
    assert "/tenant/invite/" + REDACTED in text


def test_an_unhandled_error_on_an_invite_page_logs_no_token(
    log_stream: io.StringIO,
) -> None:
    app = Flask(__name__)
    init_app(app)
    errors_init_app(app)

    @app.post("/tenant/invite/<token>")
    def explode(token: str) -> str:
        raise RuntimeError("boom")

    reply = app.test_client().post("/tenant/invite/" + INVITE_TOKEN)
    assert reply.status_code == 500
    text = log_stream.getvalue()
    assert "boom" in text  # the traceback is logged, the token is not
    assert INVITE_TOKEN not in text
