"""Keep recent answers in memory until the store changes, so paging, sorting, the page's
refresh polls and re-opened charts do not re-read 10,000 runs or 100,000 points when nothing
was written.

Change detection for the embedded store is SQLite's `PRAGMA data_version` on a connection of
our own (read-only): it moves whenever any other connection, in any process, commits. Stores
without a local database file are not cached.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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


class StoreCache:
    """Values keyed by the question asked, valid while the store is unchanged."""

    def __init__(self, watch: ChangeWatch | None, size: int = 4) -> None:
        self.watch = watch
        self.size = size
        self._entries: OrderedDict[Any, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Any) -> Any | None:
        """The cached value for `key` if it is still valid, without computing it."""
        if self.watch is None:
            return None
        version = self.watch.version()
        with self._lock:
            found = self._entries.get(key)
        return found[1] if found and found[0] == version else None

    def get(self, key: Any, compute: Callable[[], T], keep: Callable[[T], bool] = bool) -> T:
        """The value for `key`, computed unless cached; kept only where `keep(value)`."""
        if self.watch is None:
            return compute()
        version = self.watch.version()
        with self._lock:
            found = self._entries.get(key)
            if found and found[0] == version:
                self._entries.move_to_end(key)
                return found[1]
        value = compute()
        if keep(value):
            with self._lock:
                self._entries[key] = (version, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return value


def watch_for(store: Any) -> ChangeWatch | None:
    """A watch on the embedded store's database file; None for other stores."""
    from autotrack.store.sqlite import DATABASE_NAME

    root = getattr(store, "root", None)
    database = Path(root) / DATABASE_NAME if root is not None else None
    if database is None or not database.is_file():
        return None
    return ChangeWatch(database)
