"""Several processes writing one store, a SIGKILL'd writer, and back-pressure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import autotrack
from autotrack import RunStatus
from autotrack.store.sqlite import SQLiteStore

WRITER = textwrap.dedent(
    """
    import sys, autotrack
    autotrack.set_tracking_uri(sys.argv[1])
    with autotrack.start_run(run_name=sys.argv[2]):
        autotrack.log_param("worker", sys.argv[2])
        for step in range(int(sys.argv[3])):
            autotrack.log_metric("loss", 1.0 / (step + 1), step=step)
            autotrack.log_metrics({"a": step, "b": -step}, step=step)
    """
)


def test_concurrent_processes_lose_nothing(store_uri):
    points = 3000
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_uri, f"w{i}", str(points)])
        for i in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    runs = autotrack.search_runs()
    assert sorted(r.run_name for r in runs) == ["w0", "w1", "w2", "w3"]
    for run in runs:
        assert run.status is RunStatus.FINISHED
        assert run.params == {"worker": run.run_name}
        for key in ("loss", "a", "b"):
            history = autotrack.get_metric_history(run.run_id, key)
            assert [m.step for m in history] == list(range(points))
        assert run.metrics["loss"] == 1.0 / points


def test_threads_writing_one_run_lose_nothing():
    with autotrack.start_run() as run:

        def write(name: str) -> None:
            for step in range(2000):
                run.log_metric(name, step, step=step)

        threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for i in range(6):
        assert len(autotrack.get_metric_history(run.run_id, f"t{i}")) == 2000


KILLED = textwrap.dedent(
    """
    import sys, time, autotrack
    autotrack.set_tracking_uri(sys.argv[1])
    run = autotrack.start_run(run_name="doomed")
    for step in range(100):
        autotrack.log_metric("early", step, step=step)
    print(run.run_id, flush=True)
    time.sleep(3)  # several flush intervals pass
    for step in range(100):
        autotrack.log_metric("late", step, step=step)
    print("late", flush=True)
    time.sleep(60)
    """
)


def test_sigkilled_writer_keeps_what_was_flushed_and_reads_as_killed(store_uri):
    env = {**os.environ, "AUTOTRACK_FLUSH_INTERVAL": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, store_uri], stdout=subprocess.PIPE, text=True, env=env
    )
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "late"
    time.sleep(1.5)  # more than one flush interval after the late points
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run = autotrack.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert run.end_time is not None
    assert len(autotrack.get_metric_history(run_id, "early")) == 100
    assert len(autotrack.get_metric_history(run_id, "late")) == 100
    # the KILLED status is persisted, so other readers see it too
    assert [r.status for r in autotrack.search_runs()] == [RunStatus.KILLED]


def test_a_live_run_of_another_process_is_not_reaped(store_uri):
    code = (
        "import sys, time, autotrack; autotrack.set_tracking_uri(sys.argv[1]);"
        "r = autotrack.start_run(); print(r.run_id, flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, store_uri], stdout=subprocess.PIPE, text=True
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert autotrack.get_run(run_id).status is RunStatus.RUNNING
    finally:
        proc.kill()
        proc.wait()
    assert autotrack.get_run(run_id).status is RunStatus.KILLED


def test_runs_left_open_are_finished_at_exit_or_failed_on_a_crash(store_uri):
    setup = "import sys, autotrack; autotrack.set_tracking_uri(sys.argv[1]);"
    clean = setup + "autotrack.log_metric('m', 1)"
    crash = setup + "autotrack.start_run(); autotrack.log_metric('m', 2); raise SystemError('x')"
    subprocess.run([sys.executable, "-c", clean, store_uri], check=True)
    result = subprocess.run([sys.executable, "-c", crash, store_uri], capture_output=True)
    assert result.returncode == 1
    statuses = {r.metrics["m"]: r.status for r in autotrack.search_runs()}
    assert statuses == {1.0: RunStatus.FINISHED, 2.0: RunStatus.FAILED}


def test_buffer_is_bounded_when_the_writer_falls_behind(tmp_path):
    store = SQLiteStore(tmp_path / "s", flush_interval=3600, max_buffered_points=1000)
    run = store.create_run("0", run_name="r", tags={}, parent_run_id=None, start_time=0)
    for step in range(5000):
        store.add_metric_row((run.run_id, "m", 1.0, step, 0))
        assert len(store._buffer) < 1000
    store.close()
    assert len(store.get_metric_history(run.run_id, "m")) == 5000
