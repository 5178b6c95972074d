"""The sklearn integration records only what its RECORDED table (the README) declares."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from documented import assert_documented  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_validate, train_test_split  # noqa: E402

import autotrack  # noqa: E402
from autotrack.integrations.sklearn import RECORDED  # noqa: E402


def test_recorded_keys_are_declared():
    autotrack.sklearn.autolog()
    try:
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
        accuracy_score(y_test, model.predict(X_test))
        Ridge().fit(*load_diabetes(return_X_y=True))
        KMeans(3, n_init=2, random_state=0).fit(load_iris(return_X_y=True)[0])
        GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=3).fit(*load_diabetes(return_X_y=True))
        cross_validate(Ridge(), *load_diabetes(return_X_y=True), cv=3)
        assert_documented(RECORDED)
    finally:
        autotrack.sklearn.autolog(disable=True)
