"""Patch mechanics: exact revert (own vs inherited), descriptors, no stacking, transparency."""

from __future__ import annotations

import copy
import inspect
import pickle
import types
import warnings

import pytest

from autotrack import safety
from autotrack.patching import Patch, PatchSet, PatchWrapper, module_references


@pytest.fixture(autouse=True)
def _fresh_warnings():
    safety.reset_warnings()
    yield
    safety.reset_warnings()


def counting_wrapper(log: list):
    def wrapper(wrapped, instance, args, kwargs):
        log.append((wrapped.__name__, instance, args))
        return wrapped(*args, **kwargs)

    return wrapper


class _AvailableIf:
    """A delegating descriptor shaped like sklearn's `available_if` (the core session runs
    without scikit-learn): the attribute exists only while `check(instance)` is true."""

    def __init__(self, fn, check):
        self.fn, self.check = fn, check

    def __get__(self, instance, owner=None):
        if instance is not None and not self.check(instance):
            raise AttributeError(self.fn.__name__)
        return self.fn if instance is None else types.MethodType(self.fn, instance)


def available_if(check):
    try:
        from sklearn.utils.metaestimators import available_if as sklearn_available_if
    except ImportError:
        return lambda fn: _AvailableIf(fn, check)
    return sklearn_available_if(check)


def _has_predict(self) -> bool:
    return self.ready


class Base:
    ready = True

    def fit(self, x: int, *, scale: float = 1.0) -> float:
        """Fit the base."""
        return x * scale

    @classmethod
    def build(cls, value):
        return (cls.__name__, value)

    @staticmethod
    def helper(value):
        return value + 1

    @available_if(_has_predict)
    def predict(self, x):
        return -x

    @property
    def size(self):
        return 3


class Child(Base):
    pass


class Own(Base):
    def fit(self, x: int, *, scale: float = 1.0) -> float:
        return super().fit(x, scale=scale) + 100


def make_module() -> types.ModuleType:
    module = types.ModuleType("fake_metrics")

    def accuracy(y_true, y_pred, *, normalize=True):
        """Fraction of equal items."""
        hits = sum(a == b for a, b in zip(y_true, y_pred, strict=True))
        return hits / (len(y_true) if normalize else 1)

    accuracy.__module__ = "fake_metrics"
    module.accuracy = accuracy
    return module


@pytest.fixture
def snapshot():
    names = ("fit", "build", "helper", "predict")
    before = {cls: dict(vars(cls)) for cls in (Base, Child, Own)}
    yield names
    for cls, namespace in before.items():  # never leak a patch into the next test
        for name in names:
            if name in namespace:
                setattr(cls, name, namespace[name])
            elif name in vars(cls):
                delattr(cls, name)


def test_module_function_is_wrapped_and_restored_identically():
    module = make_module()
    original = module.accuracy
    log: list = []
    patches = PatchSet()
    patches.add(module, "accuracy", counting_wrapper(log))

    assert module.accuracy([1, 2], [1, 3]) == 0.5
    assert log and log[0][0] == "accuracy"
    assert patches.revert_all() == []
    assert vars(module)["accuracy"] is original


def test_own_and_inherited_methods_revert_exactly(snapshot):
    originals = {name: vars(Base)[name] for name in snapshot}
    own_fit = vars(Own)["fit"]
    log: list = []
    patches = PatchSet()
    for name in snapshot:
        patches.add(Base, name, counting_wrapper(log))
    patches.add(Child, "fit", counting_wrapper(log))  # inherited: lands in Child.__dict__
    patches.add(Own, "fit", counting_wrapper(log))

    assert "fit" in vars(Child)
    assert Child().fit(2, scale=3) == 6
    assert Own().fit(1) == 101
    assert patches.revert_all() == []

    for name, original in originals.items():
        assert vars(Base)[name] is original
    assert "fit" not in vars(Child)  # inherited again, no stale copy left behind
    assert vars(Own)["fit"] is own_fit
    assert Child.fit is Base.fit


def test_classmethod_staticmethod_and_available_if_keep_their_behaviour(snapshot):
    log: list = []
    patches = PatchSet()
    for name in ("build", "helper", "predict"):
        patches.add(Base, name, counting_wrapper(log))

    assert Child.build(5) == ("Child", 5)
    assert Base().build(6) == ("Base", 6)
    assert Base.helper(1) == 2 and Base().helper(2) == 3
    assert Base().predict(4) == -4
    not_ready = Base()
    not_ready.ready = False
    assert not hasattr(not_ready, "predict")  # the delegating descriptor still decides
    assert [entry[0] for entry in log] == ["build", "build", "helper", "helper", "predict"]
    patches.revert_all()


def test_properties_and_non_callables_are_refused(snapshot):
    with pytest.raises(TypeError, match="not a function"):
        Patch(Base, "size", counting_wrapper([]))
    with pytest.raises(TypeError, match="classes and modules"):
        Patch(Base(), "fit", counting_wrapper([]))
    with pytest.raises(AttributeError):
        Patch(Base, "missing", counting_wrapper([]))


def test_adding_twice_never_stacks(snapshot):
    log: list = []
    patches = PatchSet()
    first = patches.add(Base, "fit", counting_wrapper(log))
    second = patches.add(Base, "fit", counting_wrapper(log))
    assert first is second and len(patches) == 1
    with pytest.raises(ValueError, match="already patched"):
        PatchSet().add(Base, "fit", counting_wrapper(log))
    Base().fit(1)
    assert len(log) == 1
    patches.revert_all()


def test_subclass_patch_looks_through_the_base_patch(snapshot):
    log: list = []
    patches = PatchSet()
    patches.add(Base, "fit", counting_wrapper(log))
    child = patches.add(Child, "fit", counting_wrapper(log))
    assert child.original is vars(Base)["fit"].__wrapped__
    Child().fit(1)
    assert len(log) == 1  # one wrapper per call, not two stacked
    patches.revert_all()


def test_revert_leaves_a_later_patch_by_someone_else_alone(snapshot):
    patches = PatchSet()
    patches.add(Base, "fit", counting_wrapper([]))
    theirs = lambda self, x, **kw: "theirs"  # noqa: E731
    Base.fit = theirs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        left = patches.revert_all()
    assert len(left) == 1
    assert vars(Base)["fit"] is theirs
    assert "was replaced by other code" in str(caught[0].message)


def test_wrapped_callables_keep_signature_name_doc():
    module = make_module()
    original = module.accuracy
    patches = PatchSet()
    patches.add(module, "accuracy", counting_wrapper([]))
    wrapped = module.accuracy
    assert isinstance(vars(module)["accuracy"], PatchWrapper)
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert (wrapped.__name__, wrapped.__doc__, wrapped.__module__) == (
        "accuracy",
        "Fraction of equal items.",
        "fake_metrics",
    )
    assert inspect.isfunction(wrapped)
    assert wrapped.__wrapped__ is original
    patches.revert_all()


def test_patched_callables_copy_and_pickle_like_functions(snapshot):
    """sklearn's clone deep-copies a scorer's function and joblib pickles it: a bare wrapt
    proxy refuses both, so a patched metric would break a user's GridSearchCV."""
    pytest.importorskip("sklearn")
    import sklearn.metrics
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GridSearchCV

    patches = PatchSet()
    patches.add(sklearn.metrics, "f1_score", counting_wrapper([]))
    patches.add(Base, "fit", counting_wrapper([]))
    try:
        patched = sklearn.metrics.f1_score
        assert copy.deepcopy(patched) is patched and copy.copy(patched) is patched
        assert pickle.loads(pickle.dumps(patched)) is patched
        search = GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring=make_scorer(patched))
        assert clone(search).scoring._score_func is patched
        pickle.loads(pickle.dumps(search))

        model = Base()
        model.tag = "kept"
        restored = pickle.loads(pickle.dumps(model.fit))
        assert restored(2) == 2 and restored.__self__.tag == "kept"
        assert copy.deepcopy(model.fit).__self__ is not model
    finally:
        patches.revert_all()
    assert pickle.loads(pickle.dumps(sklearn.metrics.f1_score)) is sklearn.metrics.f1_score


def test_module_references_find_names_imported_elsewhere():
    module = make_module()
    user = types.ModuleType("user_script")
    user.acc = module.accuracy
    import sys

    sys.modules["user_script_for_test"] = user
    sys.modules["fake_metrics_for_test"] = module
    try:
        found = module_references([module.accuracy])[id(module.accuracy)]
    finally:
        del sys.modules["user_script_for_test"], sys.modules["fake_metrics_for_test"]
    assert (user, "acc") in found and (module, "accuracy") in found


def test_alias_patch_shares_the_proxy_and_reverts(snapshot):
    module = make_module()
    user = types.ModuleType("user_script")
    user.acc = original = module.accuracy
    log: list = []
    patches = PatchSet()
    primary = patches.add(module, "accuracy", counting_wrapper(log))
    patches.add(user, "acc", primary.wrapper_fn, alias_of=primary)
    assert user.acc is module.accuracy  # one proxy, as there was one function
    user.acc([1], [1])
    assert len(log) == 1
    patches.revert_all()
    assert vars(user)["acc"] is original and vars(module)["accuracy"] is original
