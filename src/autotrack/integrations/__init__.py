"""The registry of built-in integrations: one data row each, the single source of truth for
names, aliases, import triggers and version ranges (read by autolog, the noxfile and the README).

This module imports nothing heavy so that the noxfile can load it by path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntegrationInfo:
    name: str  # `autotrack.<name>.autolog()`
    module: str  # module path under autotrack.integrations
    imports: tuple[str, ...]  # importing any of these enables the integration
    distribution: str  # PyPI name shown to users
    supported: str  # packaging specifier, checked against module.__version__
    tested: tuple[str, ...]  # versions the nox matrix runs (oldest ... newest)
    aliases: tuple[str, ...] = ()


REGISTRY: tuple[IntegrationInfo, ...] = (
    IntegrationInfo(
        "sklearn", "sklearn", ("sklearn",), "scikit-learn", ">=1.2,<2", ("1.2.2", "1.9.1")
    ),
    IntegrationInfo(
        "xgboost", "xgboost", ("xgboost",), "xgboost", ">=1.7,<4", ("1.7.6", "2.1.4", "3.2.0")
    ),
    IntegrationInfo(
        "lightgbm", "lightgbm", ("lightgbm",), "lightgbm", ">=3.3,<5", ("3.3.5", "4.7.0")
    ),
    IntegrationInfo(
        "tensorflow",
        "keras",
        ("keras", "tensorflow"),
        "tensorflow",
        ">=2.15,<4",  # checked against the Keras version: tf.keras 2.15, or Keras 3.x
        ("2.15.1", "2.16.2", "2.21.0"),
        aliases=("keras",),
    ),
    IntegrationInfo(
        "pytorch",
        "pytorch",
        ("torch", "lightning", "pytorch_lightning"),
        "torch",
        ">=2.1,<3",
        ("2.13.0",),
        aliases=("torch",),
    ),
)


def find(name: str) -> IntegrationInfo | None:
    """The row for a name or alias."""
    for info in REGISTRY:
        if name == info.name or name in info.aliases:
            return info
    return None
