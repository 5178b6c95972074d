"""The XGBoost integration records only what its RECORDED table (the README) declares."""

from __future__ import annotations

import pytest

xgb = pytest.importorskip("xgboost")

from documented import assert_documented  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations.xgboost import RECORDED  # noqa: E402


def test_recorded_keys_are_declared():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
    autotrack.xgboost.autolog()
    try:
        model = xgb.XGBClassifier(n_estimators=20, early_stopping_rounds=3)
        model.fit(
            X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)], verbose=False
        )
        train = xgb.DMatrix(X_train, y_train)
        xgb.train({"objective": "binary:logistic"}, train, 5, evals=[(train, "train")])
        xgb.cv({"objective": "binary:logistic"}, train, 5, nfold=3)
        assert_documented(RECORDED)
    finally:
        autotrack.xgboost.autolog(disable=True)


def test_two_trainings_in_one_user_run_keep_the_first_params():
    """Params are write-once; a second autologged call in the user's run must not fail."""
    X, y = load_breast_cancer(return_X_y=True)
    train = xgb.DMatrix(X, y)
    autotrack.xgboost.autolog()
    try:
        with autotrack.start_run() as run:
            xgb.train({"objective": "binary:logistic", "max_depth": 2}, train, 3)
            xgb.train({"objective": "binary:logistic", "max_depth": 4}, train, 5)
        params = autotrack.get_run(run.run_id).params
        assert params["max_depth"] == "2" and params["num_boost_round"] == "3"
    finally:
        autotrack.xgboost.autolog(disable=True)
