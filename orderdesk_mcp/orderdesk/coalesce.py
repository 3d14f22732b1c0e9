"""Single flight: concurrent identical reads share one upstream request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

T = TypeVar("T")


@dataclass
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Runs ``fn`` once per key at a time; callers arriving meanwhile wait and share the outcome.

    ``run`` returns ``(result, shared)``: ``shared`` is True for a caller that waited for
    another's call. An exception of the leader is raised in every waiting caller too. Results
    are shared objects: give callers their own copies if they may mutate them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}

    def run(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._flights[key] = flight
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return cast(T, flight.result), True
        try:
            result = fn()
            flight.result = result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return result, False

    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)
