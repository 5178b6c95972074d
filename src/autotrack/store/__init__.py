"""Stores keep runs; `open_store(uri)` picks the backend for a tracking URI."""

from __future__ import annotations

from autotrack.store.base import Store


def open_store(uri: str) -> Store:
    """`mlflow+...`/`mlflow:` selects the MLflow backend; anything else is a local folder."""
    if uri.startswith("mlflow"):
        from autotrack.store.mlflow import MlflowStore

        return MlflowStore(uri)
    from autotrack.store.sqlite import SQLiteStore

    path = uri[len("file://") :] if uri.startswith("file://") else uri
    return SQLiteStore(path)


__all__ = ["Store", "open_store"]
