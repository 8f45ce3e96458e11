"""``aiusage aggregate run``: catch up at start, then run on a croniter schedule (UTC).

Time is injected: the daemon asks a Clock what time it is and a ``wait`` function to
pass time, so tests drive a whole schedule without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from aggregator.runner import Aggregator, RunReport
from aiusage.clock import Clock

log = logging.getLogger(__name__)

# wait(seconds) passes up to that much time and returns True when asked to stop.
Wait = Callable[[float], bool]
MAX_WAIT_S = 60.0


def next_fire(schedule: str, after_epoch: float) -> float:
    """The schedule's next time strictly after ``after_epoch``, in UTC."""
    start = datetime.fromtimestamp(after_epoch, UTC)
    fire: float = croniter(schedule, start).get_next(float)
    return fire


class Daemon:
    def __init__(
        self,
        aggregator: Aggregator,
        schedule: str,
        clock: Clock,
        stop: threading.Event,
        wait: Wait | None = None,
        run_now: threading.Event | None = None,
    ) -> None:
        """``run_now``, when set, asks for a run before the next tick (``wait`` should
        return early for it)."""
        self._aggregator = aggregator
        self._run_now = run_now
        self._schedule = schedule
        self._clock = clock
        self._stop = stop
        self._wait = wait or stop.wait
        self._lock = threading.Lock()
        self._last: RunReport | None = None
        self._last_error = ""
        self._next: float | None = None
        self.runs = 0

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Unhealthy when the last run failed."""
        with self._lock:
            last = self._last
            details: dict[str, Any] = {
                "runs": self.runs,
                "last_run_ok": last.ok if last else None,
                "last_error": self._last_error,
                "next_run": datetime.fromtimestamp(self._next, UTC).isoformat()
                if self._next
                else None,
            }
        return (last is None or last.ok), details

    def run(self) -> None:
        """Catch up now, then at every tick of the schedule, until stopped."""
        self._run_once("start-up catch-up")
        while not self._stop.is_set():
            fire = next_fire(self._schedule, self._clock.time())
            with self._lock:
                self._next = fire
            log.info("next run at %s", datetime.fromtimestamp(fire, UTC).isoformat())
            while (remaining := fire - self._clock.time()) > 0:
                if self._wait(min(remaining, MAX_WAIT_S)):
                    return
                if self._run_now is not None and self._run_now.is_set():
                    self._run_now.clear()
                    self._run_once("requested run")
            self._run_once("scheduled run")

    def _run_once(self, what: str) -> None:
        try:
            report = self._aggregator.catch_up(self._stop)
            error = report.error
        except Exception as err:  # ClickHouse down: report unhealthy, try at the next tick
            log.exception("%s failed", what)
            report, error = RunReport(failed=datetime.now(UTC).date()), str(err)
        if not report.ok:
            self._aggregator.metrics.failed_runs.inc()
        with self._lock:
            self._last, self._last_error = report, error
            self.runs += 1
        log.info(
            "%s: %d days, %d rollup rows%s",
            what,
            len(report.days),
            report.rows,
            f"; failed: {error}" if error else "",
        )
