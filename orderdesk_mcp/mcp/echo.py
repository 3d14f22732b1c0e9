"""Client input repeated in a message, cut to a short prefix.

An error that names what the client sent ("unknown tool: ...") must not repeat all of it: a
900 KB tool name would come back as a 900 KB reply (and a 900 KB log line). Every echo of a
name, URI, method, header or id goes through `clip`, and `bound_message` caps a whole
message as the last line of defence.
"""

from __future__ import annotations

from collections.abc import Iterable

ECHO_CHARS = 60
MAX_MESSAGE_CHARS = 2000
ELLIPSIS = "…"


def clip(value: object, most: int = ECHO_CHARS) -> str:
    """`value` as text, at most `most` characters: a prefix and an ellipsis when longer."""
    text = str(value)
    return text if len(text) <= most else text[: most - 1] + ELLIPSIS


def echo(value: object) -> str:
    """A clipped value in quotes (repr), for naming what the client sent."""
    return repr(clip(value))


def echo_names(values: Iterable[object], most: int = 5) -> str:
    """A few clipped names, comma-separated, with a count of the rest."""
    items = list(values)
    shown = ", ".join(echo(value) for value in items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def bound_message(message: str) -> str:
    return clip(message, MAX_MESSAGE_CHARS)
