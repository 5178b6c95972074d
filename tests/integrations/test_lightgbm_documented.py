"""The LightGBM integration records only what its RECORDED table (the README) declares."""

from __future__ import annotations

import pytest

lgb = pytest.importorskip("lightgbm")

from documented import assert_documented  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations.lightgbm import RECORDED  # noqa: E402


def test_recorded_keys_are_declared():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
    autotrack.lightgbm.autolog()
    try:
        model = lgb.LGBMClassifier(n_estimators=20, verbose=-1)
        model.fit(
            X_train,
            y_train,
            eval_set=[(X_train, y_train), (X_valid, y_valid)],
            callbacks=[lgb.early_stopping(3, verbose=False)],
        )
        train = lgb.Dataset(X_train, y_train)
        lgb.train({"objective": "binary", "verbose": -1}, train, 5, valid_sets=[train])
        lgb.cv({"objective": "binary", "verbose": -1}, train, 5, nfold=3)
        assert_documented(RECORDED)
    finally:
        autotrack.lightgbm.autolog(disable=True)


def test_two_trainings_in_one_user_run_keep_the_first_params():
    """Params are write-once; a second autologged call in the user's run must not fail."""
    X, y = load_breast_cancer(return_X_y=True)
    autotrack.lightgbm.autolog()
    try:
        with autotrack.start_run() as run:
            for leaves, rounds in ((4, 3), (8, 5)):
                data = lgb.Dataset(X, y)
                lgb.train(
                    {"objective": "binary", "num_leaves": leaves, "verbose": -1}, data, rounds
                )
        params = autotrack.get_run(run.run_id).params
        assert params["num_leaves"] == "4" and params["num_boost_round"] == "3"
    finally:
        autotrack.lightgbm.autolog(disable=True)
