"""`autolog()`: switch integrations on, reconfigure them, or off; `status()` says what is patched.

- `make_autolog(integration)` builds `autotrack.<name>.autolog(**options)`: options are
  validated into the integration's config class (unknown names fail with the valid ones
  listed). Config is live: the wrappers read it on every call, so calling again swaps it and
  never stacks a patch. `disable=True` reverts every patch exactly.
- A framework already imported is patched at once; otherwise a wrapt post-import hook
  (registered once per import name, since wrapt cannot unregister one) patches it when the user
  imports it, reading the config current at that moment. The hook body is contained: wrapt
  turns an exception there into a failed `import` for the user.
- A large framework is patched piece by piece: `Integration.submodules(module)` names more
  modules, each patched (`targets(submodule)`) at once if loaded, else when the user imports
  it, so enabling never imports the whole framework.
- `autolog_all(**common_options)` (`autotrack.autolog`) configures every registry row, except
  integrations configured explicitly, and never imports a framework itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import wrapt
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from autotrack import engine, integrations, patching, safety
from autotrack.integrations import IntegrationInfo
from autotrack.integrations.base import CommonConfig, Integration, PatchTarget

_LOCK = threading.RLock()


@dataclass(frozen=True)
class StatusRow:
    """One line of `autotrack status`. `target` is empty for the integration as a whole."""

    integration: str
    target: str
    state: str  # patched | skipped | failed | pending (waiting for the import) | off
    reason: str = ""


@dataclass(eq=False)
class _Entry:
    """Everything autolog keeps about one integration."""

    integration: Integration
    info: IntegrationInfo
    live: engine.Live
    explicit: bool = False  # configured by its own autolog(): a global call leaves it alone
    patches: patching.PatchSet = field(default_factory=patching.PatchSet)
    points: dict[str, StatusRow] = field(default_factory=dict)
    summary: tuple[str, str] = ("off", "autolog() not called")
    modules_done: set[str] = field(default_factory=set)
    watched: set[str] = field(default_factory=set)  # submodules patched when imported
    framework: tuple[str, str] | None = None  # (root module, version) the submodules share
    extras_on: bool = False

    @property
    def name(self) -> str:
        return self.info.name


_entries: dict[str, _Entry] = {}
_load_failures: dict[str, str] = {}
_hooked: set[str] = set()
_context_patches = patching.PatchSet()


# -- options --------------------------------------------------------------------------------
def validate_options(
    config_class: type[CommonConfig], options: Mapping[str, Any], where: str
) -> CommonConfig:
    """Options -> a config instance; unknown names or wrongly typed flags raise TypeError."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(
            f"{where} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(fields)}"
        )
    for name, value in options.items():
        if fields[name].type in ("bool", bool) and not isinstance(value, bool):
            raise TypeError(f"{where}: option {name!r} must be True or False, got {value!r}")
    tags = options.get("extra_tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(f"{where}: extra_tags must be a dict of tag names to values")
    return config_class(**options)


def _options_doc(integration: Integration, info: IntegrationInfo) -> str:
    fields = dataclasses.fields(integration.config_class)
    listed = "\n".join(f"    {f.name} (default {f.default!r})" for f in fields)
    return (
        f"Autolog {info.distribution} calls into autotrack runs (supported {info.supported}).\n\n"
        f"Calling again updates the options; disable=True removes every patch.\nOptions:\n{listed}"
    )


# -- public entry points -----------------------------------------------------------------------
def make_autolog(
    integration: Integration, info: IntegrationInfo | None = None
) -> Callable[..., None]:
    """The `autolog(**options)` function of one integration module."""
    row = info or integrations.find(integration.name)
    if row is None:
        raise ValueError(f"integration {integration.name!r} has no row in the registry")
    where = f"autotrack.{row.name}.autolog()"
    with _LOCK:
        entry = _register(integration, row)

    def autolog(**options: Any) -> None:
        config = validate_options(integration.config_class, options, where)
        with _LOCK:
            if _entries.get(row.name) is not entry:
                _register_entry(entry)
            entry.explicit = True
            _configure(entry, config, loud=True)

    autolog.__doc__ = _options_doc(integration, row)
    autolog.integration = integration  # type: ignore[attr-defined]
    autolog.info = row  # type: ignore[attr-defined]
    return autolog


def autolog_all(**options: Any) -> None:
    """Autolog every supported framework: those imported now at once, the others when imported.

    Takes the common options (`disable`, `exclusive`, `log_models`, `silent`, `extra_tags`,
    ...). An integration configured by its own `autotrack.<name>.autolog(...)` keeps that
    configuration. A framework that is not installed is skipped silently.
    """
    validate_options(CommonConfig, options, "autotrack.autolog()")
    with _LOCK:
        for info in integrations.REGISTRY:
            entry = _load(info)
            if entry is None or entry.explicit:
                continue
            config = validate_options(
                entry.integration.config_class, options, "autotrack.autolog()"
            )
            _configure(entry, config, loud=False)


def status() -> list[StatusRow]:
    """Every integration and patch point: patched / skipped / failed / pending / off, and why."""
    with _LOCK:
        names = [info.name for info in integrations.REGISTRY]
        names += [name for name in _entries if name not in names]
        rows: list[StatusRow] = []
        for name in names:
            entry = _entries.get(name)
            if entry is None:
                failure = _load_failures.get(name)
                state, reason = ("failed", failure) if failure else ("off", "autolog() not called")
                rows.append(StatusRow(name, "", state, reason))
                continue
            rows.append(StatusRow(name, "", *entry.summary))
            rows.extend(entry.points.values())
        for patch in _context_patches:
            where = patching.describe(patch.owner, patch.attribute)
            rows.append(StatusRow("engine", where, "patched", "carries the caller's context"))
        return rows


def format_status(rows: list[StatusRow] | None = None, verbose: bool = False) -> str:
    """Text for `autotrack status`: one line per integration, then its patch points that are
    not patched (all of them with `verbose`)."""
    rows = status() if rows is None else rows
    lines: list[str] = []
    for name in dict.fromkeys(r.integration for r in rows):
        mine = [r for r in rows if r.integration == name]
        points = [r for r in mine if r.target]
        head = next((r for r in mine if not r.target), None)
        state, reason = (head.state, head.reason) if head else ("patched", "")
        if points:
            counts = {
                s: sum(r.state == s for r in points) for s in ("patched", "failed", "skipped")
            }
            tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            reason = f"{reason}; patch points: {tally}" if reason else f"patch points: {tally}"
        lines.append(f"{name:<12} {state:<8} {reason}")
        for row in points:
            if verbose or row.state != "patched":
                detail = f"  {row.reason}" if row.reason else ""
                lines.append(f"    {row.state:<8} {row.target}{detail}")
    return "\n".join(lines)


# -- enable / disable ------------------------------------------------------------------------
def _register(integration: Integration, info: IntegrationInfo) -> _Entry:
    entry = _Entry(integration, info, engine.Live(integration))
    _register_entry(entry)
    return entry


def _register_entry(entry: _Entry) -> None:
    """Make `entry` the one for its name; a replaced entry (a reloaded module) is switched off."""
    previous = _entries.get(entry.name)
    if previous is not None and previous is not entry:
        previous.live.config = None
        _deactivate(previous)
    _entries[entry.name] = entry
    _load_failures.pop(entry.name, None)


def _load(info: IntegrationInfo) -> _Entry | None:
    """The entry of a registry row, importing its integration module (never the framework)."""
    entry = _entries.get(info.name)
    if entry is not None:
        return entry
    path = info.module if "." in info.module else f"autotrack.integrations.{info.module}"
    with safety.contained("import", info.name) as guard:
        importlib.import_module(path)
    if guard.error is not None:
        _load_failures[info.name] = f"integration module {path} failed: {guard.error!r}"
    return _entries.get(info.name)


def _configure(entry: _Entry, config: CommonConfig, loud: bool) -> None:
    if config.disable:
        entry.live.config = None
        _deactivate(entry)
        entry.summary = ("off", "disabled by autolog(disable=True)")
    else:
        entry.live.config = config
        _activate(entry, loud)
    _sync_context_patches()


def _activate(entry: _Entry, loud: bool) -> None:
    imports = entry.info.imports
    imported = [sys.modules[name] for name in imports if sys.modules.get(name) is not None]
    for name in imports:
        if sys.modules.get(name) is None:
            _hook(name)
    for module in imported:
        _on_module(entry, module)
    if imported:
        return
    if _installed(imports):
        entry.summary = ("pending", f"patched when {' or '.join(imports)} is imported")
        return
    entry.summary = ("skipped", f"{entry.info.distribution} is not installed")
    silent = entry.live.config is not None and entry.live.config.silent
    if loud and not silent:
        safety.warn_once(
            ("missing", entry.name),
            f"autotrack.{entry.name}.autolog(): {entry.info.distribution} is not installed "
            f"(no module named {imports[0]!r}); nothing will be recorded for it.",
            stacklevel=4,
        )


def _installed(imports: tuple[str, ...]) -> bool:
    for name in imports:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def _deactivate(entry: _Entry) -> None:
    """Revert every patch exactly and remove the integration's extras."""
    entry.patches.revert_all()
    entry.points.clear()
    entry.modules_done.clear()
    entry.watched.clear()
    entry.framework = None
    if entry.extras_on:
        entry.extras_on = False
        with safety.contained("extras", entry.name):
            entry.integration.disable_extras()


def _hook(name: str) -> None:
    """Call `_on_import` when `name` is imported (once per name: wrapt cannot unregister)."""
    if name not in _hooked:
        _hooked.add(name)
        wrapt.register_post_import_hook(_on_import, name)


def _on_import(module: types.ModuleType) -> None:
    """Post-import hook: patch for every enabled integration this import triggers."""
    with safety.contained("import"), _LOCK:
        for entry in list(_entries.values()):
            config = entry.live.config
            name = module.__name__
            if config is not None and (name in entry.info.imports or name in entry.watched):
                with safety.contained("import", entry.name, config.silent):
                    _on_module(entry, module)


def version_problem(version: str, supported: str) -> str | None:
    """Why `version` is not known to be supported (pre-releases and unparsable ones are not)."""
    try:
        if SpecifierSet(supported).contains(Version(version), prereleases=False):
            return None
    except (InvalidVersion, InvalidSpecifier):
        return f"version {version!r} cannot be checked against {supported}"
    return f"version {version} is outside the supported range {supported}"


def _on_module(entry: _Entry, module: types.ModuleType) -> None:
    config = entry.live.config
    if config is None or module.__name__ in entry.modules_done:
        return
    if module.__name__ not in entry.info.imports:  # a submodule: its root was checked
        if entry.framework is not None:
            _patch_module(entry, module, *entry.framework)
        return
    name, info, silent = entry.name, entry.info, config.silent
    version = "unknown"
    with safety.contained("version", name, silent):
        version = entry.integration.framework_version(module)
    problem = version_problem(version, info.supported)
    if problem:
        skip = config.disable_for_unsupported_versions
        if not silent:
            safety.warn_once(
                ("version", name),
                f"autotrack ({name}): {info.distribution} {problem}; "
                + ("not autologging it." if skip else "autologging anyway, it may be incomplete."),
                stacklevel=4,
            )
        if skip:
            entry.summary = ("skipped", f"{info.distribution} {problem}")
            return
    if not _patch_module(entry, module, module.__name__, version):
        return
    if not entry.extras_on:
        entry.extras_on = True
        with safety.contained("extras", name, silent):
            entry.integration.enable_extras(module, config)
    note = f"; {problem}" if problem else ""
    entry.summary = ("patched", f"{info.distribution} {version}{note}")


def _patch_module(entry: _Entry, module: types.ModuleType, framework: str, version: str) -> bool:
    """Patch `module`'s targets, then the submodules the integration names: loaded ones now,
    the others from a post-import hook. False if the targets could not be listed."""
    assert entry.live.config is not None
    entry.modules_done.add(module.__name__)
    entry.framework = entry.framework or (framework, version)
    targets: list[PatchTarget] = []
    submodules: list[str] = []
    with safety.contained("targets", entry.name, entry.live.config.silent) as guard:
        targets = list(entry.integration.targets(module))
        submodules = list(entry.integration.submodules(module))
    if guard.error is not None:
        reason = f"could not list patch points: {guard.error!r}"
        if module.__name__ in entry.info.imports:
            entry.summary = ("failed", reason)
        else:
            entry.points[module.__name__] = StatusRow(entry.name, module.__name__, "failed", reason)
        return False
    for target in targets:
        _patch(entry, target, framework, version)
    if any(isinstance(target.owner, types.ModuleType) for target in targets):
        _rebind_references(entry)
    for name in submodules:
        entry.watched.add(name)
        loaded = sys.modules.get(name)
        if loaded is None:
            _hook(name)
        else:
            _on_module(entry, loaded)
    return True


def _patch(entry: _Entry, target: PatchTarget, framework: str, version: str) -> None:
    point = patching.describe(target.owner, target.attribute)
    if (target.owner, target.attribute) in entry.patches:
        return
    if getattr(target.owner, "__module__", None) == "__main__":
        reason = "classes defined in __main__ are never patched (they are pickled by value)"
        entry.points[point] = StatusRow(entry.name, point, "skipped", reason)
        return
    wrapper = engine.make_wrapper(entry.live, target, framework, version)
    assert entry.live.config is not None
    with safety.contained("patch", entry.name, entry.live.config.silent) as guard:
        entry.patches.add(target.owner, target.attribute, wrapper)
    failed = guard.error is not None
    reason = f"{type(guard.error).__name__}: {guard.error}" if failed else ""
    entry.points[point] = StatusRow(entry.name, point, "failed" if failed else "patched", reason)


def _rebind_references(entry: _Entry) -> None:
    """Module functions imported by name elsewhere before autolog() (`from sklearn.metrics
    import accuracy_score` in the user's script) are rebound to the patched function too."""
    primaries = [
        p for p in entry.patches if isinstance(p.owner, types.ModuleType) and p.alias_of is None
    ]
    if not primaries:
        return
    found = patching.module_references(p.original for p in primaries)
    for primary in primaries:
        for module, attribute in found.get(id(primary.original), ()):
            if (module, attribute) in entry.patches:
                continue
            point = patching.describe(module, attribute)
            with safety.contained("patch", entry.name, True) as guard:
                entry.patches.add(module, attribute, primary.wrapper_fn, alias_of=primary)
            if guard.error is None:
                of = patching.describe(primary.owner, primary.attribute)
                entry.points[point] = StatusRow(entry.name, point, "patched", f"same as {of}")


def _sync_context_patches() -> None:
    """Context carrying into thread pools is on exactly while some integration is enabled."""
    enabled = any(entry.live.config is not None for entry in _entries.values())
    if enabled and not len(_context_patches):
        for owner, attribute, wrapper in engine.context_targets():
            with safety.contained("patch"):
                _context_patches.add(owner, attribute, wrapper)
    elif not enabled and len(_context_patches):
        _context_patches.revert_all()


def _reset_for_tests() -> None:
    """Switch every integration off and forget them (post-import hooks stay registered)."""
    with _LOCK:
        for entry in list(_entries.values()):
            entry.live.config = None
            _deactivate(entry)
        _entries.clear()
        _load_failures.clear()
        _sync_context_patches()


class _CallableModule(types.ModuleType):
    """`autotrack.autolog` names both this module and the function users call: once any
    integration has imported this module, the package attribute is the module, so the module
    itself must answer `autotrack.autolog(...)`."""

    def __call__(self, **options: Any) -> None:
        autolog_all(**options)


sys.modules[__name__].__class__ = _CallableModule
