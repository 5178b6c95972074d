"""Keep the last searches in memory until the store changes, so paging, sorting and the
page's refresh polls do not re-read 10,000 runs when nothing was written.

Change detection for the embedded store is SQLite's `PRAGMA data_version` on a connection of
our own (read-only): it moves whenever any other connection, in any process, commits. A
result holding RUNNING runs is never reused (a run whose process died turns KILLED on read,
without a write), and stores without a local database are simply not cached.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autotrack.entities import Run, RunStatus


class ChangeWatch:
    """Tells whether a SQLite database file has been written since the last look."""

    def __init__(self, database: Path) -> None:
        self._db = sqlite3.connect(
            f"file:{database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])


class RunsCache:
    """Search results keyed by (experiments, filter), valid while the store is unchanged."""

    def __init__(self, watch: ChangeWatch | None, size: int = 4) -> None:
        self.watch = watch
        self.size = size
        self._entries: OrderedDict[Any, tuple[int, list[Run], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Any) -> tuple[list[Run], Any] | None:
        """The cached result for `key` if it is still valid, without searching."""
        if self.watch is None:
            return None
        version = self.watch.version()
        with self._lock:
            found = self._entries.get(key)
        return (found[1], found[2]) if found and found[0] == version else None

    def get(
        self,
        key: Any,
        search: Callable[[], list[Run]],
        derive: Callable[[list[Run]], Any],
    ) -> tuple[list[Run], Any]:
        """The runs for `key` and what `derive` computed from them (e.g. column keys)."""
        if self.watch is None:
            runs = search()
            return runs, derive(runs)
        version = self.watch.version()
        with self._lock:
            found = self._entries.get(key)
            if found and found[0] == version:
                self._entries.move_to_end(key)
                return found[1], found[2]
        runs = search()
        derived = derive(runs)
        if not any(run.status == RunStatus.RUNNING for run in runs):
            with self._lock:
                self._entries[key] = (version, runs, derived)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return runs, derived


def cache_for(store: Any) -> RunsCache:
    """A cache watching the store's database file, or a pass-through for other stores."""
    from autotrack.store.sqlite import DATABASE_NAME

    root = getattr(store, "root", None)
    database = Path(root) / DATABASE_NAME if root is not None else None
    if database is None or not database.is_file():
        return RunsCache(None)
    return RunsCache(ChangeWatch(database))
