"""Traffic: injected faults, request counts and rate-limit windows of the X endpoints.

Faults are registered through the control API and fire on matching requests (see
`sandbox/faults.py` for what firing does); every X request is counted per endpoint;
the rate windows are the tier's unless overridden, counted per caller by `RateLimiter`,
which is not thread-safe itself: these methods take the world's lock around it.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from sandbox.limits import RateLimiter, Window, tier_table
from sandbox.records import FAULT_MODES, Fault
from sandbox.shared import Part, Shared

RECENT_REQUESTS = 1000


class Traffic(Part):
    """The active faults, the per-endpoint request counts and the rate-limit counters."""

    def __init__(self, shared: Shared) -> None:
        self._limiter = RateLimiter()
        super().__init__(shared)

    def reset(self) -> None:
        """No faults, no counts, fresh windows."""
        with self._lock:
            self._faults: list[Fault] = []
            self._counts: dict[str, int] = {}
            self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_REQUESTS)
            self._next_fault = 1
            self._limiter.reset()

    # --- faults ---------------------------------------------------------------------

    def add_fault(self, raw: dict[str, Any]) -> Fault:
        """Register a fault from control-API JSON; ValueError when malformed."""
        endpoint, mode, numbers = _fault_fields(raw)
        with self._lock:
            fault = Fault(f"f{self._next_fault}", endpoint, mode, *numbers)
            self._next_fault += 1
            self._faults.append(fault)
            return fault

    def take_fault(self, endpoint: str) -> Fault | None:
        """The fault that fires for this request, if any (counting it)."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint not in (endpoint, "*"):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.probability < 1.0 and self._shared.rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
            return None

    def clear_faults(self) -> int:
        """Remove every fault; how many there were."""
        with self._lock:
            removed = len(self._faults)
            self._faults.clear()
            return removed

    def remove_fault(self, fault_id: str) -> int:
        """Remove the fault with this id; how many were removed (0 or 1)."""
        with self._lock:
            kept = [f for f in self._faults if f.id != fault_id]
            removed = len(self._faults) - len(kept)
            self._faults[:] = kept
            return removed

    def fault_rows(self) -> list[dict[str, Any]]:
        """The active faults as the control API shows them."""
        with self._lock:
            return [f.as_json() for f in self._faults]

    # --- counts ---------------------------------------------------------------------

    def count_request(self, endpoint: str, query: dict[str, str] | None = None) -> None:
        """Count a request to an X endpoint (for `state.request_counts`), and keep it with its query
        among the recent ones (`state.requests`: what a client asked, e.g. which fields)."""
        with self._lock:
            self._counts[endpoint] = self._counts.get(endpoint, 0) + 1
            self._recent.append({"endpoint": endpoint, "query": dict(query or {})})

    def recent_requests(self) -> list[dict[str, Any]]:
        """The last RECENT_REQUESTS requests to X endpoints, oldest first, each with its query parameters."""
        with self._lock:
            return list(self._recent)

    def request_counts(self) -> dict[str, int]:
        """Requests so far per X endpoint."""
        with self._lock:
            return dict(self._counts)

    # --- rate limits ----------------------------------------------------------------

    def windows(self, endpoint: str) -> tuple[Window, ...]:
        """The endpoint's effective windows: the tier's, unless overridden; none when switched off."""
        options = self._shared.options
        if not options.rate_limits:
            return ()
        override = options.limit_overrides.get(endpoint)
        if override is not None:
            return tuple(Window.from_json(w) for w in override)
        return tier_table(options.tier).get(endpoint, ())

    def restart_windows(self) -> None:
        """Forget every window's count (the limits changed)."""
        with self._lock:
            self._limiter.reset()

    def check_rate(self, endpoint: str, client_id: str, user_id: str) -> tuple[bool, dict[str, str]]:
        """Count one request of the caller in the endpoint's windows: (allowed, headers)."""
        with self._lock:
            windows = self.windows(endpoint)
            if not windows:
                return True, {}
            return self._limiter.check(endpoint, windows, client_id, user_id, self._shared.now())

    def limits_json(self) -> dict[str, Any]:
        """The effective windows per endpoint and the live counters (`GET /_sandbox/limits`)."""
        with self._lock:
            options = self._shared.options
            keys = set(tier_table(options.tier)) | set(options.limit_overrides)
            table = {key: [w.as_json() for w in self.windows(key)] for key in sorted(keys)}
            return {"tier": options.tier, "enabled": options.rate_limits, "windows": table,
                    "counters": self._limiter.snapshot(self._shared.now())}


def _fault_fields(raw: dict[str, Any]) -> tuple[str, str, tuple[Any, ...]]:
    """(endpoint, mode, (status, probability, latency, times, after)) of a fault's JSON, checked."""
    endpoint = raw.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError("endpoint is required, e.g. \"POST /2/tweets\" or \"*\"")
    mode = raw.get("mode") or ("status" if "status" in raw else "latency" if raw.get("latency") else None)
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {list(FAULT_MODES)}")
    status = int(raw.get("status", 503))
    probability = float(raw.get("probability", 1.0))
    latency = float(raw.get("latency", 0.0))
    times = raw.get("times")
    after = int(raw.get("after", 0))
    if not 100 <= status <= 599 or not 0.0 <= probability <= 1.0 or latency < 0 or after < 0:
        raise ValueError("status must be 100-599, probability 0-1, latency and after ≥ 0")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive whole number or null")
    return endpoint, mode, (status, probability, latency, times, after)
