"""The sklearn integration records only what its RECORDED table (the README) declares."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from documented import assert_documented
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, cross_validate, train_test_split

import autotrack
from autotrack.integrations.sklearn import RECORDED


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
