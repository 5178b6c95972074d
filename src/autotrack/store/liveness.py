"""Is the process that owns a RUNNING run still alive? (So dead runs read as KILLED.)"""

from __future__ import annotations

import os


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot, to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int | None, started: str | None) -> bool:
    if not pid:
        return True  # unknown owner: never guess a run is dead
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if started:
        now = process_started(pid)
        return not now or now == started
    return True
