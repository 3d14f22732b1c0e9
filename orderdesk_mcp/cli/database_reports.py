"""The plain-text forms of `db status` and `db maintain` (their --json forms are the dicts)."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.cli.base import short_time, table
from orderdesk_mcp.maintenance import MaintenanceReport, file_bytes


def human_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _file_line(name: str, stats: dict[str, Any]) -> str:
    if "error" in stats:
        return f"{name}: {stats['path']} cannot be read: {stats['error']}"
    line = f"{name}: {human_bytes(stats.get('bytes'))}"
    if "dead_rows" in stats:
        line += f", {stats['dead_rows']} dead rows (VACUUM makes their space reusable)"
    if "page_count" in stats:
        line += (
            f" (+ {human_bytes(stats['wal_bytes'])} WAL), {stats['page_count']} pages of "
            f"{stats['page_size']} B, {stats['free_pages']} free, auto_vacuum "
            f"{stats['auto_vacuum']}; {stats['path']}"
        )
    return line


def status_text(status: dict[str, Any]) -> str:
    lines = [f"Schema version {status['schema_version']} of {status['latest_version']}."]
    if status["pending"]:
        lines[0] += f" Pending: {', '.join(status['pending'])} (run `orderdesk-mcp db upgrade`)."
    for name in ("database", "cache"):
        if name in status:
            lines.append(_file_line(name.capitalize(), status[name]))
    lines.append("")
    rows = [{"table": name, "rows": count} for name, count in status["rows"].items()]
    lines.append(table(rows, ["table", "rows"]))
    jobs = [
        {
            "job": kind,
            "last_run": short_time(job["finished"]),
            "outcome": job["outcome"],
            "last_success": short_time(job["last_success"]),
            "detail": job["detail"],
        }
        for kind, job in status["jobs"].items()
    ]
    lines += [
        "",
        "Jobs (UTC):",
        table(jobs, ["job", "last_run", "outcome", "last_success", "detail"]),
    ]
    return "\n".join(lines)


def maintenance_text(report: MaintenanceReport) -> str:
    lines = [f"{'Full' if report.full else 'Online'} maintenance of the {report.engine} database:"]
    lines += [f"  {step}" for step in report.steps]
    for name in ("database", "cache"):
        before, after = report.before.get(name), report.after.get(name)
        if before and after:
            lines.append(
                f"{name.capitalize()}: {human_bytes(file_bytes(before))} -> "
                f"{human_bytes(file_bytes(after))}"
                + (
                    f", free pages {before['free_pages']} -> {after['free_pages']}"
                    if "free_pages" in before
                    else ""
                )
            )
    return "\n".join(lines)
