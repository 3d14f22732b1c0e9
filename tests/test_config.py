"""Settings: defaults, precedence, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.config import SETTINGS, Secret, SettingsError, load_settings, read_env_file


def test_defaults_match_the_public_contract(tmp_path: Path) -> None:
    settings = load_settings({"XDG_DATA_HOME": str(tmp_path)})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    # Chosen from measured SDK sessions (docs/PERFORMANCE.md, "Requests per client session").
    assert settings.rate_limit == "180/minute"
    assert settings.protocol_rate_limit == "600/minute"
    assert settings.rate_limit_storage == "memory://"
    assert settings.log_format == "json"
    assert settings.orderdesk_api_base_url == "https://app.orderdesk.me/api/v2"
    assert settings.database_path.name == "orderdesk-mcp.db"
    assert settings.cache_path.name == "http-cache.sqlite"


def test_environment_beats_env_file_and_flags_beat_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "orderdesk-mcp.env"
    env_file.write_text('# comment\nORDERDESK_MCP_PORT=9000\nexport ORDERDESK_MCP_THREADS="3"\n')
    settings = load_settings({"ORDERDESK_MCP_PORT": "9100"}, env_file=env_file)
    assert (settings.port, settings.threads) == (9100, 3)
    assert load_settings({"ORDERDESK_MCP_PORT": "9100"}, port=9200).port == 9200


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "ORDERDESK_MCP_PORT",
            "eighty",
            "ORDERDESK_MCP_PORT='eighty' is not valid: expected a whole number",
        ),
        ("ORDERDESK_MCP_PORT", "70000", "from 0 to 65535"),
        ("ORDERDESK_MCP_LOG_FORMAT", "xml", "one of json, text"),
        ("ORDERDESK_MCP_RATE_LIMIT", "lots", "a rate such as 120/minute"),
        ("ORDERDESK_API_BASE_URL", "ftp://x", "an https:// URL"),
        ("ORDERDESK_API_BASE_URL", "http://orderdesk.example", "only for loopback hosts"),
        ("ORDERDESK_MCP_TRUSTED_PROXY", "nginx", "one IP address"),
        ("ORDERDESK_MCP_TRUSTED_PROXY", "127.0.0.1,::1", "one IP address"),
        ("ORDERDESK_MCP_DATABASE_URL", "bogus://x", "a database URL"),
        ("ORDERDESK_MCP_RATE_LIMIT_STORAGE", "bogus://", "a flask-limiter storage URI"),
        ("ORDERDESK_MCP_RATE_LIMIT_STORAGE", "memcached://h:1", "needs `pip install pymemcache`"),
        ("ORDERDESK_STORE_ID", "abc", "numeric Order Desk store id"),
        ("ORDERDESK_MCP_CACHE_URL", "redis://x", "sqlite"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_is_allowed(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(
        SettingsError, match=expected.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        load_settings({name: value})
    assert str(info.value).startswith(name)
    assert "\n" not in str(info.value)


def test_unknown_prefixed_variables_are_refused() -> None:
    with pytest.raises(SettingsError, match="ORDERDESK_MCP_PROT is not a setting"):
        load_settings({"ORDERDESK_MCP_PROT": "1"})


def test_a_bad_secret_is_never_echoed(tmp_path: Path) -> None:
    settings = load_settings({"ORDERDESK_MCP_ADMIN_TOKEN": "hunter2-very-secret"})
    assert "hunter2" not in repr(settings)
    assert isinstance(settings.admin_token, Secret)
    assert settings.admin_token.reveal() == "hunter2-very-secret"


def test_env_file_syntax_errors_name_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("ORDERDESK_MCP_PORT=1\nnot a setting line\n")
    with pytest.raises(SettingsError, match=r"bad.env:2: expected KEY=VALUE"):
        read_env_file(env_file)


def test_every_setting_has_help_and_a_valid_default() -> None:
    for spec in SETTINGS:
        assert spec.help.endswith("."), spec.name
        spec.parse(spec.default_text())


@given(st.text(max_size=40))
def test_any_port_text_is_either_a_port_or_one_clean_error(raw: str) -> None:
    message = ""
    try:
        port = load_settings({"ORDERDESK_MCP_PORT": raw}).port
    except SettingsError as exc:
        message = str(exc)
    if message:
        assert message.startswith("ORDERDESK_MCP_PORT=")
    else:
        assert 0 <= port <= 65535


def test_trusted_proxy_is_kept_exactly_as_written() -> None:
    # waitress compares the peer address with it as text; normalising would never match.
    settings = load_settings({"ORDERDESK_MCP_TRUSTED_PROXY": "::ffff:127.0.0.1"})
    assert settings.trusted_proxy == "::ffff:127.0.0.1"
