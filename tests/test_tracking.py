"""The tracking API against the real embedded store."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

import autotrack
from autotrack import RunStatus


def test_run_lifecycle_and_automatic_context():
    with autotrack.start_run(run_name="first", tags={"team": "a"}) as run:
        assert autotrack.active_run() is run
        autotrack.log_params({"C": 1.0, "kernel": "rbf"})
        autotrack.log_metric("loss", 0.5, step=0)
        autotrack.log_metric("loss", 0.25, step=1)
        autotrack.set_tag("stage", "dev")
    assert autotrack.active_run() is None
    stored = autotrack.get_run(run.run_id)
    assert stored.run_name == "first"
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time >= stored.start_time
    assert stored.params == {"C": "1.0", "kernel": "rbf"}
    assert stored.metrics == {"loss": 0.25}
    assert stored.tags["team"] == "a" and stored.tags["stage"] == "dev"
    assert stored.tags["autotrack.python_version"].count(".") == 2
    assert "autotrack.source.name" in stored.tags
    assert "autotrack.platform" in stored.tags


def test_metric_history_keeps_value_step_and_timestamp():
    with autotrack.start_run() as run:
        for step in range(5):
            autotrack.log_metric("acc", step / 10, step=step, timestamp=1000 + step)
        autotrack.log_metrics({"a": 1, "b": 2.5}, step=7)
    history = autotrack.get_metric_history(run.run_id, "acc")
    assert [(m.value, m.step, m.timestamp) for m in history] == [
        (i / 10, i, 1000 + i) for i in range(5)
    ]
    assert autotrack.get_run(run.run_id).metrics == {"acc": 0.4, "a": 1.0, "b": 2.5}


def test_metrics_without_step_count_up():
    with autotrack.start_run() as run:
        for value in (3, 2, 1):
            autotrack.log_metric("x", value)
    assert [m.step for m in autotrack.get_metric_history(run.run_id, "x")] == [0, 1, 2]


def test_latest_metric_is_the_highest_step_not_the_last_logged():
    with autotrack.start_run() as run:
        autotrack.log_metric("m", 5.0, step=10)
        autotrack.log_metric("m", 1.0, step=2)
    assert autotrack.get_run(run.run_id).metrics["m"] == 5.0


def test_nan_and_inf_are_stored_as_such():
    with autotrack.start_run() as run:
        autotrack.log_metric("nan", float("nan"))
        autotrack.log_metric("inf", float("inf"))
        autotrack.log_metric("ninf", -math.inf)
    metrics = autotrack.get_run(run.run_id).metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf
    assert math.isnan(autotrack.get_metric_history(run.run_id, "nan")[0].value)


def test_nested_runs_link_to_their_parent():
    with autotrack.start_run() as parent:
        with autotrack.start_run(nested=True) as child:
            assert autotrack.active_run() is child
        assert autotrack.active_run() is parent
    assert autotrack.get_run(child.run_id).parent_run_id == parent.run_id
    with pytest.raises(RuntimeError, match="already active"), autotrack.start_run():
        autotrack.start_run()


def test_exception_in_block_fails_the_run_and_propagates():
    with pytest.raises(ZeroDivisionError), autotrack.start_run() as run:
        1 / 0  # noqa: B018
    assert autotrack.get_run(run.run_id).status is RunStatus.FAILED


def test_log_metric_without_active_run_starts_one():
    autotrack.log_metric("x", 1.0)
    run = autotrack.active_run()
    assert run is not None
    autotrack.end_run()
    assert autotrack.get_run(run.run_id).metrics == {"x": 1.0}


@pytest.mark.parametrize("key", ["", "   ", "a" * 251, "../up", "/abs", "bad\x00key", "tab\tkey"])
def test_bad_keys_are_refused_and_the_run_is_untouched(key):
    with autotrack.start_run() as run:
        autotrack.log_metric("good", 1.0)
        with pytest.raises(ValueError):
            autotrack.log_metric(key, 1.0)
        with pytest.raises(ValueError):
            autotrack.log_param(key, 1)
        autotrack.log_metric("good", 2.0)
    stored = autotrack.get_run(run.run_id)
    assert stored.metrics == {"good": 2.0}
    assert stored.status is RunStatus.FINISHED


@pytest.mark.parametrize("value", ["0.5", b"1", None, [1, 2], object()])
def test_non_numeric_metric_values_are_refused(value):
    with autotrack.start_run() as run, pytest.raises(ValueError, match="metric 'm'"):
        autotrack.log_metric("m", value)
    assert autotrack.get_run(run.run_id).metrics == {}


def test_numpy_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    with autotrack.start_run() as run:
        autotrack.log_metric("m", np.float32(0.5))
        autotrack.log_metric("n", np.int64(3))
    assert autotrack.get_run(run.run_id).metrics == {"m": 0.5, "n": 3.0}


def test_params_are_write_once():
    with autotrack.start_run() as run:
        autotrack.log_param("C", 1)
        autotrack.log_param("C", 1)  # the same value again is fine
        with pytest.raises(ValueError, match=r"param 'C' was already logged as '1'.*'2'"):
            autotrack.log_param("C", 2)
        with pytest.raises(ValueError):
            autotrack.log_params({"D": 3, "C": 5})  # nothing of a bad batch is written
    assert autotrack.get_run(run.run_id).params == {"C": "1"}


def test_huge_param_values_are_truncated_with_a_marker():
    with autotrack.start_run() as run:
        autotrack.log_param("big", "x" * 20_000)
    value = autotrack.get_run(run.run_id).params["big"]
    assert len(value) <= 8000 and value.endswith("[truncated]")


def test_artifacts_dict_text_file_and_folder(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.csv").write_text("a,b\n1,2\n")
    with autotrack.start_run() as run:
        autotrack.log_artifact(source)
        autotrack.log_artifact(source, "docs")
        autotrack.log_artifacts(folder, "data")
        autotrack.log_dict({"k": [1, 2]}, "results/d.json")
        autotrack.log_text("text", "t.txt")
    paths = {f.path for f in autotrack.list_artifacts(run.run_id)}
    assert paths == {"data", "docs", "results", "notes.txt", "t.txt"}
    assert Path(autotrack.artifact_path(run.run_id, "data/sub/a.csv")).read_text() == "a,b\n1,2\n"
    assert Path(autotrack.artifact_path(run.run_id, "results/d.json")).read_text().count("1") == 1
    assert [f.path for f in autotrack.list_artifacts(run.run_id, "docs")] == ["docs/notes.txt"]


@pytest.mark.parametrize("bad", ["../escape", "/etc", "a/../../b", "x\x01"])
def test_artifact_paths_cannot_escape(tmp_path, bad):
    source = tmp_path / "f.txt"
    source.write_text("x")
    with autotrack.start_run() as run:
        with pytest.raises(ValueError):
            autotrack.log_artifact(source, bad)
        with pytest.raises(ValueError):
            autotrack.log_text("x", f"{bad}/t.txt")
        autotrack.log_artifact(source)
    with pytest.raises(ValueError):
        autotrack.artifact_path(run.run_id, "../../runs.db")
    assert [f.path for f in autotrack.list_artifacts(run.run_id)] == ["f.txt"]


def test_log_figure_uses_no_pyplot_state():
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    with autotrack.start_run() as run:
        autotrack.log_figure(figure, "plots/line.png")
    png = Path(autotrack.artifact_path(run.run_id, "plots/line.png")).read_bytes()
    assert png.startswith(b"\x89PNG")
    assert "matplotlib.pyplot" not in __import__("sys").modules or matplotlib.get_fignums() == []


def test_search_filters_and_orders():
    for c, rmse, model in ((0.1, 3.0, "tree"), (1.0, 1.0, "linear"), (10.0, 2.0, "tree")):
        with autotrack.start_run(run_name=f"c{c}", tags={"model_type": model}):
            autotrack.log_param("C", c)
            autotrack.log_metric("rmse", rmse)
    names = [r.run_name for r in autotrack.search_runs(order_by=["metrics.rmse ASC"])]
    assert names == ["c1.0", "c10.0", "c0.1"]
    trees = autotrack.search_runs(filter_string="tags.model_type = 'tree' and metrics.rmse < 2.5")
    assert [r.run_name for r in trees] == ["c10.0"]
    assert [r.run_name for r in autotrack.search_runs(filter_string="params.C = '1.0'")] == ["c1.0"]
    assert len(autotrack.search_runs(filter_string="attributes.status = 'FINISHED'")) == 3
    assert len(autotrack.search_runs(filter_string="tags.model_type LIKE 'TR%'")) == 0
    assert len(autotrack.search_runs(filter_string="tags.model_type ILIKE 'TR%'")) == 2
    assert len(autotrack.search_runs(max_results=2)) == 2
    with pytest.raises(autotrack.FilterError, match="bogus"):
        autotrack.search_runs(filter_string="bogus.x = 1")


def test_experiments_separate_runs():
    autotrack.set_experiment("exp-a")
    with autotrack.start_run(run_name="in-a"):
        pass
    autotrack.set_experiment("exp-b")
    with autotrack.start_run(run_name="in-b"):
        pass
    assert [r.run_name for r in autotrack.search_runs(["exp-a"])] == ["in-a"]
    assert {r.run_name for r in autotrack.search_runs()} == {"in-a", "in-b"}
    with pytest.raises(ValueError):
        autotrack.set_experiment("")


def test_tracking_uri_selects_the_folder(tmp_path):
    autotrack.set_tracking_uri(tmp_path / "elsewhere")
    with autotrack.start_run() as run:
        autotrack.log_metric("m", 1)
    assert (tmp_path / "elsewhere" / "runs.db").exists()
    assert autotrack.get_tracking_uri() == str(tmp_path / "elsewhere")
    assert autotrack.artifact_uri(run.run_id).startswith(str(tmp_path / "elsewhere"))


def test_git_commit_is_read_from_the_repository(tmp_path):
    from autotrack.context import git_commit

    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (tmp_path / "repo" / "src").mkdir()
    assert git_commit(tmp_path / "repo" / "src") == "a" * 40
    assert git_commit(Path(os.sep)) in (None, git_commit(Path(os.sep)))


def test_deferred_work_finishes_before_the_run_ends():
    import time

    seen = []
    with autotrack.start_run() as run:

        def slow():
            time.sleep(0.2)
            run.log_metric("deferred", 1.0)
            seen.append(True)

        run.defer(slow)
    stored = autotrack.get_run(run.run_id)
    assert seen == [True] and stored.metrics == {"deferred": 1.0}
    assert stored.status is RunStatus.FINISHED


def test_end_run_without_waiting_returns_at_once_and_finishes_later():
    import time

    run = autotrack.start_run()
    run.defer(time.sleep, 0.3)
    started = time.perf_counter()
    autotrack.end_run(wait=False)
    assert time.perf_counter() - started < 0.1
    assert autotrack.get_run(run.run_id).status is RunStatus.FINISHED


def test_keep_existing_params_keeps_the_first_value_instead_of_raising():
    """What autologged calls use when they add to a run an earlier call logged into."""
    with autotrack.start_run() as run:
        run.log_params({"epochs": 5})
        run.log_params({"epochs": 10, "batch_size": 32}, keep_existing=True)
        with pytest.raises(ValueError, match="write-once"):
            run.log_params({"epochs": 10})
    assert autotrack.get_run(run.run_id).params == {"epochs": "5", "batch_size": "32"}


def test_ending_an_active_run_below_the_top_takes_it_off_the_stack():
    """The engine ends its managed run even when user code inside the call left a run open."""
    outer = autotrack.start_run(run_name="managed")
    inner = autotrack.start_run(run_name="left-open", nested=True)
    outer.end("FINISHED")
    assert autotrack.active_run() is inner
    autotrack.end_run()
    assert autotrack.active_run() is None
    assert {r.run_name: r.status for r in autotrack.search_runs()} == {
        "managed": RunStatus.FINISHED,
        "left-open": RunStatus.FINISHED,
    }
