"""Metrics after tuning: labelled children are cached, counts and caps stay as they were."""

from __future__ import annotations

from orderdesk_mcp.metrics import OTHER, BoundedLabel, Metrics


def test_cached_children_count_into_the_same_series() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.record_tool_call("get_order", "ok", 0.002)
        metrics.record_http("/mcp", "POST", 200, 0.003)
    metrics.record_tool_call("get_order", "not_found", 0.002)
    text = metrics.exposition().decode()
    assert 'orderdesk_mcp_tool_calls_total{outcome="ok",tool="get_order"} 3.0' in text
    assert 'orderdesk_mcp_tool_calls_total{outcome="not_found",tool="get_order"} 1.0' in text
    assert 'orderdesk_mcp_http_requests_total{method="POST",route="/mcp",status="200"} 3.0' in text
    assert 'orderdesk_mcp_tool_call_duration_seconds_count{tool="get_order"} 4.0' in text
    assert metrics._tool_calls("get_order", "ok") is metrics.tool_calls.labels("get_order", "ok")


def test_bounded_label_fast_path_keeps_the_cap_and_the_pattern() -> None:
    label = BoundedLabel(2)
    assert [label("a"), label("b"), label("c"), label("a"), label("b")] == [
        "a",
        "b",
        OTHER,
        "a",
        "b",
    ]
    assert label("bad value with spaces") == OTHER
    assert label(None) == OTHER
    assert label("") == OTHER
