"""Filter strings (`metrics.rmse < 1 and params.C = '1'`) and order-by keys, parsed into a
small query object that each store compiles to its own language."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["metric", "param", "tag", "attribute"]

_KIND_ALIASES: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
ATTRIBUTES = {
    "run_id": "run_id",
    "run_name": "run_name",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>!=|>=|<=|==|=|>|<)
      | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan))(?![\w.])
      | (?P<ident>`[^`]+`|[A-Za-z_][\w\-/]*(?:\.(?:`[^`]+`|"[^"]+"|[\w.\-/:]+))?)
      | (?P<bad>\S+)
    )""",
    re.VERBOSE,
)


class FilterError(ValueError):
    """A filter string or order-by key that cannot be understood."""


@dataclass(frozen=True)
class Comparison:
    kind: Kind
    key: str
    op: str
    value: float | str


@dataclass(frozen=True)
class Query:
    """A conjunction of comparisons; the empty query matches every run."""

    clauses: tuple[Comparison, ...] = ()


@dataclass(frozen=True)
class OrderKey:
    kind: Kind
    key: str
    ascending: bool = True


def _split_identifier(text: str) -> tuple[Kind, str]:
    text = text.strip()
    if "." not in text:
        if text.strip("`") in ATTRIBUTES:
            return "attribute", text.strip("`")
        raise FilterError(
            f"'{text}' needs a prefix: metrics.{text}, params.{text}, tags.{text} or attributes.…"
        )
    prefix, key = text.split(".", 1)
    kind = _KIND_ALIASES.get(prefix.lower())
    if kind is None:
        raise FilterError(
            f"unknown prefix '{prefix}' in '{text}': use metrics., params., tags. or attributes."
        )
    key = key.strip("`").strip('"')
    if not key:
        raise FilterError(f"'{text}' names no key")
    if kind == "attribute" and key not in ATTRIBUTES:
        raise FilterError(f"unknown attribute '{key}': one of {', '.join(sorted(ATTRIBUTES))}")
    return kind, key


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        value = match.group(kind) if kind else ""
        if kind == "bad":
            raise FilterError(f"cannot read '{value}' in filter {text!r}")
        if kind == "ident" and value.upper() in ("AND", "LIKE", "ILIKE"):
            out.append(("word", value.upper()))
        elif kind:
            out.append((kind, value))
    return out


def parse_filter(text: str | None) -> Query:
    """Parse `text` into a Query; raise FilterError naming the offending token."""
    if text is None or not text.strip():
        return Query()
    tokens = _tokens(text)
    clauses: list[Comparison] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            got = " ".join(v for _, v in tokens[i:]) or "end of filter"
            raise FilterError(f"incomplete comparison at '{got}' in filter {text!r}")
        (k1, ident), (k2, op), (k3, raw) = tokens[i], tokens[i + 1], tokens[i + 2]
        if k1 != "ident":
            raise FilterError(f"expected a key like metrics.x, got '{ident}' in filter {text!r}")
        kind, key = _split_identifier(ident)
        if k2 not in ("op", "word") or op.upper() not in (*OPERATORS, "=="):
            raise FilterError(f"expected an operator after '{ident}', got '{op}'")
        op = "=" if op == "==" else op.upper()
        clauses.append(_comparison(kind, key, op, k3, raw, text))
        i += 3
        if i == len(tokens):
            return Query(tuple(clauses))
        if tokens[i] != ("word", "AND"):
            raise FilterError(f"expected 'and' but got '{tokens[i][1]}' in filter {text!r}")
        i += 1


def _comparison(kind: Kind, key: str, op: str, token_kind: str, raw: str, text: str) -> Comparison:
    numeric = kind == "metric" or (kind == "attribute" and key in _NUMERIC_ATTRIBUTES)
    if numeric:
        if op in ("LIKE", "ILIKE"):
            raise FilterError(f"'{op}' compares strings; '{kind}s.{key}' is numeric")
        if token_kind != "number":
            raise FilterError(f"'{kind}s.{key}' is numeric; '{raw}' is not a number")
        return Comparison(kind, key, op, float(raw))
    if token_kind != "string":
        raise FilterError(
            f"value for '{kind}s.{key}' must be quoted: {kind}s.{key} {op} '{raw}' (got {raw})"
        )
    if op in (">", ">=", "<", "<="):
        raise FilterError(f"'{op}' is for numbers; '{kind}s.{key}' holds strings")
    return Comparison(kind, key, op, _unquote(raw))


def parse_order_by(items: Sequence[str] | None) -> list[OrderKey]:
    """Parse `["metrics.rmse ASC", "start_time DESC"]`."""
    keys: list[OrderKey] = []
    for item in items or ():
        parts = item.strip().rsplit(None, 1)
        ascending = True
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            ascending = parts[1].upper() == "ASC"
            item = parts[0]
        kind, key = _split_identifier(item)
        keys.append(OrderKey(kind, key, ascending))
    return keys
