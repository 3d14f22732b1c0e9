"""Fault injection: latency, 5xx replies, forced 429s and dropped connections, per store.

Share-based faults draw from a seeded RNG so a test run is repeatable.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from orderdesk_mcp.sandbox.errors import invalid


class Fault(enum.Enum):
    NONE = "none"
    DROP = "drop"
    FORCE_429 = "force_429"
    SERVER_ERROR = "server_error"


@dataclass(frozen=True)
class FaultSettings:
    """What to inject. Rates are shares in [0, 1]; `force_429` counts the next N requests.

    `short_batch_results` counts the next N /batch-shipments replies that leave out their last
    result although that shipment was added: a reply shorter than the batch, which a client
    must treat as "may or may not have landed".
    """

    latency_ms: int = 0
    error_rate: float = 0.0
    force_429: int = 0
    rate_429: float = 0.0
    drop_rate: float = 0.0
    short_batch_results: int = 0

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.latency_ms > 600_000:
            raise ValueError("latency_ms must be between 0 and 600000")
        if self.force_429 < 0:
            raise ValueError("force_429 must be 0 or more")
        if self.short_batch_results < 0:
            raise ValueError("short_batch_results must be 0 or more")
        for name in ("error_rate", "rate_429", "drop_rate"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {share}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_INT_FIELDS = ("latency_ms", "force_429", "short_batch_results")
_SHARE_FIELDS = ("error_rate", "rate_429", "drop_rate")


def fault_settings_from_json(body: Mapping[str, Any]) -> FaultSettings:
    """Build settings from an admin request body; unknown keys and bad values are a 400."""
    allowed = set(_INT_FIELDS) | set(_SHARE_FIELDS) | {"store_id"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown fault setting(s) {unknown}; allowed: {sorted(allowed)}")
    values: dict[str, Any] = {}
    for name in _INT_FIELDS:
        raw = body.get(name, 0)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise invalid(f"{name} must be a whole number")
        values[name] = raw
    for name in _SHARE_FIELDS:
        raw = body.get(name, 0.0)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise invalid(f"{name} must be a number between 0 and 1")
        values[name] = float(raw)
    try:
        return FaultSettings(**values)
    except ValueError as error:
        raise invalid(str(error)) from error


class FaultInjector:
    """One store's current fault settings and the seeded RNG that draws share-based faults."""

    def __init__(self, seed: str, settings: FaultSettings | None = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)  # noqa: S311  (repeatable faults, not crypto)
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._forced_left = self._settings.force_429
        self._short_batches_left = self._settings.short_batch_results

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return FaultSettings(
                latency_ms=self._settings.latency_ms,
                error_rate=self._settings.error_rate,
                force_429=self._forced_left,
                rate_429=self._settings.rate_429,
                drop_rate=self._settings.drop_rate,
                short_batch_results=self._short_batches_left,
            )

    def configure(self, settings: FaultSettings) -> None:
        """Replace the settings and restart the RNG, so the same settings give the same faults."""
        with self._lock:
            self._settings = settings
            self._forced_left = settings.force_429
            self._short_batches_left = settings.short_batch_results
            self._rng = random.Random(self._seed)  # noqa: S311  (repeatable faults)

    def latency_s(self) -> float:
        with self._lock:
            return self._settings.latency_ms / 1000.0

    def draw(self) -> Fault:
        """Decide this request's fault; order: drop, forced 429, 429 share, 5xx share."""
        with self._lock:
            settings = self._settings
            if settings.drop_rate and self._rng.random() < settings.drop_rate:
                return Fault.DROP
            if self._forced_left > 0:
                self._forced_left -= 1
                return Fault.FORCE_429
            if settings.rate_429 and self._rng.random() < settings.rate_429:
                return Fault.FORCE_429
            if settings.error_rate and self._rng.random() < settings.error_rate:
                return Fault.SERVER_ERROR
            return Fault.NONE

    def take_short_batch(self) -> bool:
        """True when this /batch-shipments reply should leave out its last result."""
        with self._lock:
            if self._short_batches_left <= 0:
                return False
            self._short_batches_left -= 1
            return True
