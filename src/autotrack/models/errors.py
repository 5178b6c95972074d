"""Errors raised when saving or loading a model: each says what is wrong and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """Base class: the model directory cannot be written or read as asked."""


class ModelIntegrityError(ModelError):
    """A file of the model directory is missing, truncated or changed since it was saved."""


class UntrustedModelError(ModelError):
    """Loading would run code the saver did not vouch for (pickle, or unrecorded skops types)."""


class SignatureError(ValueError):
    """Input data does not match the model's signature (missing column, dtype, shape)."""


class PickleWarning(UserWarning):
    """A model was saved with pickle: loading it will need trust=True."""
