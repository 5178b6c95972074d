"""The real page in headless Chromium over a store written by autologged fits: open the runs
view, filter, sort, open a run (chart, inline confusion matrix, model), compare two runs.

Skips when Playwright's Python package or a Chromium binary is missing (CI installs both:
`apt-get install -y chromium`, `pip install playwright`; Playwright never downloads a browser
here, it drives the system one). Set AUTOTRACK_UI_SCREENSHOTS=<folder> to keep screenshots.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("bottle")
sync_api = pytest.importorskip("playwright.sync_api")

import autotrack  # noqa: E402
from autotrack.ui.server import make_ui_server  # noqa: E402

CHROMIUM = os.environ.get("AUTOTRACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium binary (apt-get install -y chromium)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
HOSTILE_NAME = "<img src=x onerror=\"window.pwned='name'\">"
HOSTILE_PARAM = "<script>window.pwned='param'</script>"


def _shoot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("AUTOTRACK_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"ui-{name}.png"), full_page=True)


def _console_error(message, errors: list[str]) -> None:
    """Console errors, less the 400 the page gets (and shows) for a bad filter on purpose."""
    if message.type == "error" and "status of 400" not in message.text:
        errors.append(message.text)


@contextlib.contextmanager
def _browser(uri: str) -> Iterator[tuple[object, str, list[str]]]:
    autotrack.flush()
    server = make_ui_server(uri, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: _console_error(m, errors))
            page.set_default_timeout(20_000)
            try:
                yield page, f"http://127.0.0.1:{server.server_port}/", errors
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _sklearn_runs() -> dict[str, str]:
    """Two classifiers fitted under autolog (or, before the sklearn integration exists, logged
    through the tracking API with a real confusion-matrix figure)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = _iris()
    ids = {}
    autologged = importlib.util.find_spec("autotrack.integrations.sklearn") is not None
    if autologged:
        autotrack.sklearn.autolog()
    for name, model, kind in (
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0), "tree"),
        ("logreg", LogisticRegression(C=0.5, max_iter=500), "linear"),
    ):
        with autotrack.start_run(run_name=name, tags={"model_type": kind}) as run:
            model.fit(X, y)
            if not autologged:
                _log_like_autolog(model, X, y)
        ids[name] = run.run_id
    if autologged:
        autotrack.sklearn.autolog(disable=True)
    return ids


def _log_like_autolog(model, X, y) -> None:
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score

    autotrack.log_params(model.get_params())
    autotrack.log_metric("training_accuracy_score", accuracy_score(y, model.predict(X)))
    figure = Figure(figsize=(4, 4))
    ConfusionMatrixDisplay.from_estimator(model, X, y, ax=figure.subplots())
    autotrack.log_figure(figure, "training_confusion_matrix.png")
    autotrack.log_model(model, "model", X=X[:5])


def _loop_run() -> str:
    """A user's own epoch loop (SGD with partial_fit) logging its loss every epoch."""
    import numpy as np
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    X, y = _iris()
    X = StandardScaler().fit_transform(X)
    model = SGDClassifier(loss="log_loss", random_state=0)
    with autotrack.start_run(run_name="sgd-loop", tags={"model_type": "linear"}) as run:
        autotrack.log_param("max_depth", "none")
        for epoch in range(40):
            model.partial_fit(X, y, classes=np.unique(y))
            autotrack.log_metric("loss", log_loss(y, model.predict_proba(X)), step=epoch)
        autotrack.log_metric("training_accuracy_score", model.score(X, y))
    return run.run_id


def _keras_run() -> str | None:
    """A tiny Keras fit under autolog, where Keras is importable."""
    if importlib.util.find_spec("keras") is None:
        return None
    import keras
    import numpy as np

    X, y = _iris()
    order = np.random.default_rng(0).permutation(len(y))  # iris is sorted by class
    X, y = (X[order] - X.mean(axis=0)) / X.std(axis=0), y[order]
    if importlib.util.find_spec("autotrack.integrations.keras") is not None:
        autotrack.keras.autolog()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with autotrack.start_run(run_name="keras-dense", tags={"model_type": "nn"}) as run:
        model.fit(X.astype("float32"), y, epochs=15, batch_size=16, validation_split=0.2, verbose=0)
    return run.run_id


def _wait_until(page, expression: str, timeout: float = 20.0) -> None:
    """Poll `expression` with page.evaluate (wait_for_function would need eval, which the
    page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def _rows(page) -> list[str]:
    return page.locator("#runs-table tbody a.run-link").all_inner_texts()


def test_browse_filter_open_and_compare_runs(store_uri, tmp_path):
    autotrack.set_experiment("iris")
    sklearn_ids = _sklearn_runs()
    loop_id = _loop_run()
    keras_id = _keras_run()
    with autotrack.start_run(run_name=HOSTILE_NAME) as hostile:
        autotrack.log_param("evil", HOSTILE_PARAM)

    with _browser(store_uri) as (page, base, errors):
        page.goto(base)
        page.wait_for_selector("body[data-ready=runs] #runs-table tbody a.run-link")
        names = _rows(page)
        assert {"tree", "logreg", "sgd-loop", HOSTILE_NAME} <= set(names)
        assert page.evaluate("window.pwned") is None  # the name was shown, not run
        _shoot(page, "runs", tmp_path)

        page.fill("#filter", "tags.model_type = 'linear'")
        page.press("#filter", "Enter")
        _wait_until(page, "document.querySelectorAll('#runs-table tbody tr').length === 2")
        assert sorted(_rows(page)) == ["logreg", "sgd-loop"]
        page.fill("#filter", "metrics.loss > 'x'")
        page.press("#filter", "Enter")
        page.wait_for_selector(".message .error")
        assert "numeric" in page.inner_text(".message .error")
        page.fill("#filter", "")
        page.press("#filter", "Enter")
        _wait_until(page, f"document.querySelectorAll('#runs-table tbody tr').length >= {4}")

        page.click("#runs-table th:has-text('Name')")
        page.wait_for_selector("#runs-table th[aria-sort=ascending]:has-text('Name')")
        assert _rows(page) == sorted(_rows(page))

        page.click(f"#runs-table tr[data-run-id='{sklearn_ids['tree']}'] a.run-link")
        page.wait_for_selector("body[data-ready=run] #run-name")
        assert page.inner_text("#run-name") == "tree"
        assert page.inner_text("#params").count("max_depth") == 1
        matrix = page.locator(".gallery img[alt*='confusion_matrix']").first
        matrix.wait_for()
        _wait_until(
            page,
            "[...document.querySelectorAll('.gallery img')].some("
            "i => i.alt.includes('confusion_matrix') && i.complete && i.naturalWidth > 100)",
        )
        assert "autotrack.load_model" in page.inner_text("#models")
        assert f"runs:/{sklearn_ids['tree']}/model" in page.inner_text("#models")
        _shoot(page, "run", tmp_path)

        page.goto(f"{base}#/run/{hostile.run_id}")
        page.wait_for_selector("body[data-ready=run] #params")
        assert page.inner_text("#run-name") == HOSTILE_NAME
        assert HOSTILE_PARAM in page.inner_text("#params")
        assert page.evaluate("window.pwned") is None

        page.goto(f"{base}#/run/{loop_id}")
        page.wait_for_selector("#charts figure[data-metric=loss] svg path.line")
        d = page.get_attribute("#charts figure[data-metric=loss] svg path.line", "d")
        assert d.count("L") == 39  # 40 epochs, one segment between each pair
        page.check("#charts figure[data-metric=loss] .log-toggle")
        page.wait_for_selector("#charts figure[data-metric=loss] text:has-text('loss (log)')")
        logged = page.get_attribute("#charts figure[data-metric=loss] svg path.line", "d")
        assert logged != d and logged.count("L") == 39
        if keras_id:
            page.goto(f"{base}#/run/{keras_id}")
            page.wait_for_selector("#charts figure[data-metric=loss] svg path.line")
            assert page.locator("#charts figure[data-metric=loss] path.line").count() == 2
            _shoot(page, "run-keras", tmp_path)

        page.goto(f"{base}#/runs")
        page.wait_for_selector("#runs-table tbody a.run-link")
        for run_id in (sklearn_ids["tree"], loop_id):
            page.check(f"#runs-table tr[data-run-id='{run_id}'] input.select-run")
        page.click("#compare")
        page.wait_for_selector("body[data-ready=compare] #compare-table")
        header = page.inner_text("#compare-table thead")
        assert "tree" in header and "sgd-loop" in header
        assert page.locator("#compare-table tr.differs").count() > 0
        page.select_option("#scatter-x", "max_depth")
        page.select_option("#scatter-y", "training_accuracy_score")
        assert page.locator("#scatter circle.dot").count() == 2
        page.wait_for_selector("#compare-charts figure[data-metric=loss] svg")
        _shoot(page, "compare", tmp_path)
        assert page.evaluate("window.pwned") is None
        assert not errors, errors


def test_runs_view_refreshes_while_a_run_is_running(store_uri):
    run = autotrack.start_run(run_name="training")
    run.log_metric("loss", 1.0)
    with _browser(store_uri) as (page, base, errors):
        page.goto(base)
        page.wait_for_selector("#runs-table .status-running")
        assert "live" in page.inner_text(".live")
        run.log_metric("loss", 0.25)
        autotrack.end_run()
        page.wait_for_selector("#runs-table .status-finished", timeout=10_000)
        assert page.inner_text(".live") == ""
        assert not errors, errors
