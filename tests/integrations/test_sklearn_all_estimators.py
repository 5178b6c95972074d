"""Smoke test: every estimator `all_estimators()` lists that can be built with default
arguments and fitted on a small suitable dataset produces one run under autolog, and the
fitted result (predictions, transform output or cluster labels) equals the one without.

Plain results are computed first, for all estimators, before autolog() is switched on once
for the module; the data is tiny so the whole module stays well under two minutes.
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest

sklearn = pytest.importorskip("sklearn")
np = pytest.importorskip("numpy")

from sklearn import base  # noqa: E402
from sklearn.utils import all_estimators  # noqa: E402

import autotrack  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # deprecated estimators

ESTIMATORS = dict(all_estimators())
N_SAMPLES = 40


def _data(estimator) -> tuple[np.ndarray, np.ndarray | None]:
    """Non-negative features (NB variants, NMF, chi2 need them), a few integer-valued, and a
    target suited to the estimator's kind."""
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.integers(0, 4, N_SAMPLES), rng.random((N_SAMPLES, 3)) * 3 + 0.1]
    ).astype(float)
    if _is(base.is_classifier, estimator):
        return X, np.arange(N_SAMPLES) % 3
    if _is(base.is_regressor, estimator):
        return X, X[:, 1] * 2.0 + X[:, 2] + rng.random(N_SAMPLES) + 0.5
    return X, np.arange(N_SAMPLES) % 2  # transformers that select features need a target


def _is(test, estimator) -> bool:
    try:
        return bool(test(estimator))
    except Exception:  # tags of a meta-estimator built without its estimator
        return False


def _build(cls: type):
    """An instance with default arguments and a fixed seed, or None if defaults do not do."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = cls()
    except Exception:
        return None
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    return estimator


def _fit(estimator, X, y):
    """fit (with a 2-D target for multi-task-only estimators); returns the y used."""
    parameters = inspect.signature(estimator.fit).parameters
    first = next(iter(parameters), "")
    if first not in ("X", "x"):
        raise TypeError(f"fit takes {first!r}, not a feature matrix")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.fit(X, y)
            return y
        except ValueError:
            if y is None or not _is(base.is_regressor, estimator):
                raise
            y2 = np.column_stack([y, y * 0.5])
            estimator.fit(X, y2)
            return y2


def _outcome(estimator, X):
    """What the fit produced, comparable across two fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("predict", "transform"):
            if hasattr(estimator, method):
                try:
                    out = getattr(estimator, method)(X)
                except Exception:
                    continue
                return np.asarray(out.toarray() if hasattr(out, "toarray") else out)
        for attribute in ("labels_", "embedding_"):
            if hasattr(estimator, attribute):
                return np.asarray(getattr(estimator, attribute))
    return None


def _plain(name: str):
    cls = ESTIMATORS[name]
    estimator = _build(cls)
    if estimator is None:
        return None
    X, y = _data(estimator)
    try:
        used = _fit(estimator, X, y)
    except Exception:
        return None
    return X, used, _outcome(estimator, X)


@pytest.fixture(scope="module")
def plain_results():
    """Every estimator fitted without autolog (before it is switched on)."""
    return {name: _plain(name) for name in ESTIMATORS}


@pytest.fixture(scope="module")
def autologged(plain_results):
    autotrack.sklearn.autolog(
        log_preprocessors=True, log_models=False, log_plots=False, silent=True
    )
    yield
    autotrack.sklearn.autolog(disable=True)
    importlib.import_module("autotrack.autolog")._reset_for_tests()


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_under_autolog(name, plain_results, autologged):
    plain = plain_results[name]
    if plain is None:
        pytest.skip("cannot be built with default arguments or fitted on the small dataset")
    X, y, expected = plain
    cls = ESTIMATORS[name]
    estimator = _build(cls)
    _fit(estimator, X, y)

    runs = autotrack.search_runs()
    assert len(runs) == 1, [r.run_name for r in runs]
    run = runs[0]
    assert run.status == "FINISHED"
    assert run.tags["estimator_class"] == f"{cls.__module__}.{cls.__qualname__}"
    assert run.params or not estimator.get_params()
    if expected is None:
        return
    got = _outcome(estimator, X)
    if not np.array_equal(expected, got, equal_nan=True):
        again = _plain(name)
        if again is not None and not np.array_equal(expected, again[2], equal_nan=True):
            pytest.skip("not deterministic even without autolog")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
