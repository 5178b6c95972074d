"""Patching mechanics only: put a wrapt wrapper on `owner.attribute` and take it off exactly.

A `Patch` remembers the raw attribute (read from `vars()`, never through descriptor binding)
and whether the owner defined it itself. Reverting puts the raw original back when it was the
owner's own and deletes our attribute when it was inherited, so `vars(owner)` is exactly what
it was (naive `unwrap` helpers leave a copy of the inherited method on the subclass).

Only the API shared by wrapt 1.14 and 2.x is used (`FunctionWrapper`, `BoundFunctionWrapper`):
TensorFlow 2.14/2.15 pin `wrapt<1.15`.
"""

from __future__ import annotations

import copy
import importlib
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import wrapt

from autotrack import safety

WrapperFn = Callable[[Any, Any, tuple, dict], Any]  # wrapt's (wrapped, instance, args, kwargs)

# id(proxy) -> the raw original under it, for every proxy autotrack has installed.
_installed: dict[int, Any] = {}


class _ImportModule:
    """Pickles as `importlib.import_module(name)`: a module reference with no autotrack in it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return importlib.import_module, (self.name,)


def _reference(owner: Any, attribute: str) -> tuple[Any, tuple[Any, str]]:
    """`getattr(owner, attribute)` as a pickle reduction (modules by name, classes by ref)."""
    if isinstance(owner, types.ModuleType):
        return getattr, (_ImportModule(owner.__name__), attribute)
    return getattr, (owner, attribute)


class _BoundPatchWrapper(wrapt.BoundFunctionWrapper):  # type: ignore[misc]
    """A patched method once bound: pickles and copies like the bound method it stands for."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, str]]:
        parent = self._self_parent
        owner, attribute = parent._self_location
        instance = self._self_instance
        if instance is None:
            return _reference(owner, attribute)
        return getattr, (instance, attribute)

    def __reduce__(self) -> tuple[Any, tuple[Any, str]]:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        instance = self._self_instance
        if instance is None or isinstance(instance, type):
            return self
        _, attribute = self._self_parent._self_location
        return getattr(copy.deepcopy(instance, memo), attribute)


class PatchWrapper(wrapt.FunctionWrapper):  # type: ignore[misc]
    """The proxy autotrack installs. Unlike a bare wrapt proxy it can be pickled (by reference,
    as a function is) and copied (functions are atomic), because frameworks do both with the
    functions users hand them: sklearn's `clone` deep-copies a scorer's metric function, and
    joblib pickles it for worker processes."""

    __bound_function_wrapper__ = _BoundPatchWrapper
    _self_location: tuple[Any, str]  # (owner, attribute), set once installed

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, str]]:
        return _reference(*self._self_location)

    def __reduce__(self) -> tuple[Any, tuple[Any, str]]:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


def is_autotrack_proxy(value: Any) -> bool:
    return id(value) in _installed and isinstance(value, PatchWrapper)


def raw_attribute(owner: Any, attribute: str) -> tuple[Any, bool]:
    """(raw value, defined by owner itself). Inherited values come from the MRO; an autotrack
    proxy found on a base class is looked through, so patches never stack on each other."""
    namespace: Mapping[str, Any]
    if isinstance(owner, types.ModuleType):
        namespace = vars(owner)
        if attribute not in namespace:
            raise AttributeError(f"module {owner.__name__!r} has no attribute {attribute!r}")
        return namespace[attribute], True
    if not isinstance(owner, type):
        raise TypeError(f"can only patch classes and modules, not {type(owner).__name__}")
    for klass in owner.__mro__:
        namespace = vars(klass)
        if attribute in namespace:
            value = namespace[attribute]
            if klass is not owner and is_autotrack_proxy(value):
                value = _installed[id(value)]
            return value, klass is owner
    raise AttributeError(f"{owner.__qualname__} has no attribute {attribute!r}")


def describe(owner: Any, attribute: str) -> str:
    """`package.module.Class.attribute`, for status rows and warnings."""
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{attribute}"
    return (
        f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', owner)}.{attribute}"
    )


class Patch:
    """One wrapped attribute. `apply()` installs the proxy, `revert()` restores `vars(owner)`."""

    __slots__ = ("alias_of", "attribute", "original", "own", "owner", "proxy", "wrapper_fn")

    def __init__(
        self, owner: Any, attribute: str, wrapper_fn: WrapperFn, alias_of: Patch | None = None
    ) -> None:
        original, own = raw_attribute(owner, attribute)
        if own and is_autotrack_proxy(original):
            raise ValueError(f"{describe(owner, attribute)} is already patched by autotrack")
        if isinstance(original, property) or not (
            callable(original) or hasattr(original, "__get__")
        ):
            raise TypeError(f"{describe(owner, attribute)} is not a function or method")
        self.owner = owner
        self.attribute = attribute
        self.wrapper_fn = wrapper_fn
        self.original = original
        self.own = own
        self.alias_of = alias_of  # another name bound to the same function (a re-export)
        self.proxy: PatchWrapper | None = None

    def __repr__(self) -> str:
        state = "applied" if self.applied else "not applied"
        return f"<Patch {describe(self.owner, self.attribute)} ({state})>"

    @property
    def applied(self) -> bool:
        return self.proxy is not None and vars(self.owner).get(self.attribute) is self.proxy

    def apply(self) -> None:
        if self.proxy is not None:
            return
        if self.alias_of is not None and self.alias_of.proxy is not None:
            proxy = self.alias_of.proxy
        else:
            proxy = PatchWrapper(self.original, self.wrapper_fn)
            proxy._self_location = (self.owner, self.attribute)
        setattr(self.owner, self.attribute, proxy)
        self.proxy = proxy
        _installed[id(proxy)] = self.original

    def revert(self) -> bool:
        """Restore the original; False (and a warning) if someone replaced our proxy since."""
        proxy = self.proxy
        if proxy is None:
            return True
        current = vars(self.owner).get(self.attribute, _MISSING)
        if current is not proxy:
            safety.warn_once(
                ("revert", describe(self.owner, self.attribute)),
                f"autotrack: {describe(self.owner, self.attribute)} was replaced by other code "
                "after autotrack patched it; leaving it as it is (autotrack's layer underneath "
                "now passes calls straight through).",
            )
            return False
        if self.own:
            setattr(self.owner, self.attribute, self.original)
        else:
            delattr(self.owner, self.attribute)
        self.proxy = None
        if self.alias_of is None:
            _installed.pop(id(proxy), None)
        return True


_MISSING = object()


class PatchSet:
    """The patches of one integration, keyed by (owner, attribute): applying twice is a no-op."""

    def __init__(self) -> None:
        self._patches: dict[tuple[int, str], Patch] = {}

    def __len__(self) -> int:
        return len(self._patches)

    def __iter__(self) -> Iterator[Patch]:
        return iter(list(self._patches.values()))

    def __contains__(self, key: tuple[Any, str]) -> bool:
        owner, attribute = key
        return (id(owner), attribute) in self._patches

    def add(
        self, owner: Any, attribute: str, wrapper_fn: WrapperFn, alias_of: Patch | None = None
    ) -> Patch:
        """Patch `owner.attribute` now (or return the patch already there)."""
        key = (id(owner), attribute)
        existing = self._patches.get(key)
        if existing is not None:
            return existing
        patch = Patch(owner, attribute, wrapper_fn, alias_of)
        patch.apply()
        self._patches[key] = patch
        return patch

    def revert_all(self) -> list[Patch]:
        """Revert in reverse order; returns the patches that had to be left in place."""
        left = [p for p in reversed(list(self._patches.values())) if not p.revert()]
        self._patches.clear()
        return left


def module_references(functions: Iterable[Any]) -> dict[int, list[tuple[types.ModuleType, str]]]:
    """Every loaded module global bound to one of `functions`, by id of the function.

    `from sklearn.metrics import accuracy_score` run before autolog() holds the original
    function; these are the names to rebind so that such a script records what it would
    record had autolog() come first. One pass over `sys.modules`.
    """
    wanted = {id(f) for f in functions}
    found: dict[int, list[tuple[types.ModuleType, str]]] = {}
    if not wanted:
        return found
    for module in list(sys.modules.values()):
        if not isinstance(module, types.ModuleType):
            continue
        try:  # bypass lazy modules' __getattribute__, which would import them
            namespace = object.__getattribute__(module, "__dict__")
        except AttributeError:
            continue
        if wanted.isdisjoint(map(id, list(namespace.values()))):
            continue  # the common case, checked without a Python-level loop
        for name, value in list(namespace.items()):
            if id(value) in wanted and not name.startswith("__"):
                found.setdefault(id(value), []).append((module, name))
    return found
