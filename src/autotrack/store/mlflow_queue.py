"""The outbox between the training thread and an MLflow server.

Writes are appended to a bounded in-memory queue (a few hundred nanoseconds for a metric point)
and one sender thread turns them into `log_batch` requests: up to 1000 metrics, 100 params and
100 tags each, as MLflow allows. When a request fails the sender puts what was not delivered
back at the head of the queue, marked `Unsure` (it may have reached the server), and waits with
exponential backoff. Past `max_records` queued records, the whole queue is spilled (handed to
the `spill` callback, which writes it to the embedded store). Training never waits for the
server: the only blocking calls are `flush` and `close`, each bounded by a timeout.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from autotrack.entities import Metric, RunStatus
from autotrack.store.mlflow_transport import MAX_METRICS_PER_REQUEST, MAX_PARAMS_TAGS_PER_REQUEST

MetricRow = tuple[str, str, float, int, int]  # run_id, key, value, step, timestamp


@dataclass(frozen=True)
class Params:
    run_id: str
    values: dict[str, str]


@dataclass(frozen=True)
class Tags:
    run_id: str
    values: dict[str, str]


@dataclass(frozen=True)
class Finish:
    run_id: str
    status: RunStatus
    end_time: int


@dataclass(frozen=True)
class Artifact:
    """A staged copy of a file or folder (the caller's may be a temporary file)."""

    run_id: str
    staged: Path
    artifact_path: str


@dataclass(frozen=True)
class Ensure:
    """Make sure a run created while the server was unreachable exists there."""

    run_id: str


@dataclass(frozen=True)
class Unsure:
    """An item whose earlier delivery failed part-way: the server may already have it."""

    item: Item


Item = Union[MetricRow, Params, Tags, Finish, Artifact, Ensure, Unsure]  # noqa: UP007


def size(item: Item) -> int:
    """Records an item stands for: one per metric point, param or tag, one per operation."""
    if isinstance(item, Unsure):
        return size(item.item)
    if isinstance(item, (Params, Tags)):
        return len(item.values)
    return 1


def run_of(item: Item) -> str:
    if isinstance(item, Unsure):
        return run_of(item.item)
    return item[0] if isinstance(item, tuple) else item.run_id


@dataclass
class Request:
    """One call to the server: a log_batch, or one operation (finish, artifact, ensure)."""

    run_id: str
    op: Finish | Artifact | Ensure | None = None
    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    unsure: bool = False
    items: list[Item] = field(default_factory=list)

    def room(self) -> int:
        return MAX_METRICS_PER_REQUEST - len(self.metrics) - len(self.params) - len(self.tags)


def plan(items: Iterable[Item]) -> list[Request]:
    """Group queued items into requests, keeping each run's order (a finish or an artifact
    goes after that run's earlier data). Pure: the sender's "what to send"."""
    out: list[Request] = []
    open_batches: dict[str, Request] = {}

    def batch(run_id: str) -> Request:
        request = open_batches.get(run_id)
        if request is None:
            request = open_batches[run_id] = Request(run_id)
        return request

    def close(run_id: str) -> None:
        request = open_batches.pop(run_id, None)
        if request is not None:
            out.append(request)

    for raw in items:
        unsure = isinstance(raw, Unsure)
        item = raw.item if isinstance(raw, Unsure) else raw
        run_id = run_of(item)
        if isinstance(item, tuple):
            request = batch(run_id)
            if request.room() < 1 or len(request.metrics) >= MAX_METRICS_PER_REQUEST:
                close(run_id)
                request = batch(run_id)
            request.metrics.append(Metric(item[1], item[2], item[3], item[4]))
            request.unsure |= unsure
            request.items.append(raw)
        elif isinstance(item, (Params, Tags)):
            entries = list(item.values.items())
            while entries:
                request = batch(run_id)
                current = request.params if isinstance(item, Params) else request.tags
                free = min(MAX_PARAMS_TAGS_PER_REQUEST - len(current), request.room())
                if free <= 0:
                    close(run_id)
                    continue
                chunk, entries = entries[:free], entries[free:]
                current.update(chunk)
                part = type(item)(run_id, dict(chunk))
                request.unsure |= unsure
                request.items.append(Unsure(part) if unsure else part)
        elif isinstance(item, (Finish, Artifact, Ensure)):
            close(run_id)
            out.append(Request(run_id, op=item, unsure=unsure, items=[raw]))
    out.extend(open_batches.values())
    return out


class Backoff:
    """Consecutive failures -> when to try again (1s, 2s, 4s... capped, with jitter)."""

    def __init__(self, base: float = 1.0, cap: float = 60.0) -> None:
        self.base, self.cap = base, cap
        self.failures = 0
        self.retry_at = 0.0

    def failed(self) -> None:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** min(self.failures - 1, 16))
        self.retry_at = time.monotonic() + delay * random.uniform(0.8, 1.2)

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    @property
    def waiting(self) -> bool:
        """True while in backoff after a failure: do not block on the server now."""
        return time.monotonic() < self.retry_at


class Outbox:
    """Bounded queue + one daemon sender thread. `send(request)` raises `Transient` to have
    the request retried later, `Rejected` to have it dropped (and reported by the caller)."""

    def __init__(
        self,
        send: Callable[[Request], None],
        spill: Callable[[list[Item]], None],
        *,
        max_records: int = 100_000,
        interval: float = 1.0,
        batch_records: int = 1000,
        chunk_records: int = 5000,
        backoff: Backoff | None = None,
    ) -> None:
        self._send = send
        self._spill = spill
        self.max_records = max_records
        self.interval = interval
        self.batch_records = batch_records
        self.chunk_records = chunk_records
        self.backoff = backoff or Backoff()
        self._items: deque[Item] = deque()
        self._records = 0
        self._first_at = 0.0
        self._in_flight: list[Item] = []
        self._cond = threading.Condition()
        self._flushers = 0
        self._attempts = 0
        self._stopped = False
        self.spilled_records = 0
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="autotrack-mlflow", daemon=True)
        self._thread.start()

    # -- producers -------------------------------------------------------------------------------
    def put_row(self, row: MetricRow) -> None:
        """The metric fast path."""
        if self._stopped:
            self._spill_items([row])
            return
        with self._cond:
            if not self._items:
                self._first_at = time.monotonic()
            self._items.append(row)
            self._records += 1
            records = self._records
            if records == self.batch_records:
                self._cond.notify()
        if records > self.max_records:
            self._spill_queue()

    def put(self, item: Item) -> None:
        if self._stopped:  # written after close (e.g. late at exit): keep it for sync
            self._spill_items([item])
            return
        with self._cond:
            if not self._items:
                self._first_at = time.monotonic()
            self._items.append(item)
            self._records += size(item)
            records = self._records
            self._cond.notify()
        if records > self.max_records:
            self._spill_queue()

    def _spill_queue(self) -> None:
        with self._cond:
            if self._records <= self.max_records:
                return
            items = list(self._items)
            self._items.clear()
            self._records = 0
        self._spill_items(items)

    def _spill_items(self, items: list[Item]) -> None:
        if items:
            self._spill(items)
            self.spilled_records += sum(size(i) for i in items)

    # -- waiting ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._cond:
            return self._records + sum(size(i) for i in self._in_flight)

    def flush(self, timeout: float, force: bool = False) -> bool:
        """Wait until everything queued so far is delivered. Returns at once (False) while the
        server is known to be down, unless `force` asks for one immediate attempt."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._items and not self._in_flight:
                return True
            if self._stopped or (self.backoff.waiting and not force):
                return False
            if force:
                self.backoff.retry_at = 0.0
            attempts = self._attempts
            self._flushers += 1
            self._cond.notify_all()
            try:
                while self._items or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._attempts > attempts or self._stopped:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout: float) -> int:
        """Drain for at most `timeout` seconds, spill what is left, stop the sender. Returns
        the number of records spilled over the outbox's life (waiting for `autotrack sync`)."""
        self.flush(timeout, force=True)
        with self._cond:
            self._stopped = True
            leftovers = [*self._in_flight, *self._items]
            self._items.clear()
            self._records = 0
            self._cond.notify_all()
        self._spill_items(leftovers)
        return self.spilled_records

    # -- the sender ------------------------------------------------------------------------------
    def _next_chunk(self) -> list[Item] | None:
        """Block until there is something worth sending now; None when stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                if not self._items:
                    self._cond.wait()
                    continue
                if self.backoff.retry_at > now:
                    self._cond.wait(self.backoff.retry_at - now)
                    continue
                due = self._first_at + self.interval
                if self._flushers or self._records >= self.batch_records or now >= due:
                    break
                self._cond.wait(due - now)
            chunk: list[Item] = []
            taken = 0
            while self._items and taken < self.chunk_records:
                item = self._items.popleft()
                chunk.append(item)
                taken += size(item)
            self._records -= taken
            if self._items:
                self._first_at = now
            self._in_flight = chunk
            return chunk

    def _loop(self) -> None:
        while True:
            chunk = self._next_chunk()
            if chunk is None:
                return
            undelivered = self._deliver(chunk)
            with self._cond:
                self._in_flight = []
                if undelivered is not None:
                    self._attempts += 1
                    self.backoff.failed()
                    if not self._stopped:  # after close, leftovers were spilled already
                        self._items.extendleft(reversed(undelivered))
                        self._records += sum(size(i) for i in undelivered)
                        self._first_at = time.monotonic()
                else:
                    self.backoff.succeeded()
                self._cond.notify_all()

    def _deliver(self, chunk: list[Item]) -> list[Item] | None:
        """Send the chunk's requests in order; on the first failure return every item not yet
        delivered, marked Unsure. None when all went through (or were rejected)."""
        from autotrack.store.mlflow_transport import Rejected

        requests = plan(chunk)
        for index, request in enumerate(requests):
            try:
                self._send(request)
            except Rejected:
                continue  # reported by send(); retrying would fail the same way
            except Exception as exc:
                self.last_error = exc
                return [
                    item if isinstance(item, Unsure) else Unsure(item)
                    for later in requests[index:]
                    for item in later.items
                ]
        return None
