from __future__ import annotations

import pytest

from autotrack.search import Comparison, FilterError, OrderKey, parse_filter, parse_order_by


def test_parses_every_kind_and_operator():
    query = parse_filter(
        "metrics.acc > 0.9 and params.C = '1' AND tags.model_type LIKE 'tr%'"
        " and attributes.status != 'FAILED' and metrics.`val loss` <= -1e-3"
    )
    assert query.clauses == (
        Comparison("metric", "acc", ">", 0.9),
        Comparison("param", "C", "=", "1"),
        Comparison("tag", "model_type", "LIKE", "tr%"),
        Comparison("attribute", "status", "!=", "FAILED"),
        Comparison("metric", "val loss", "<=", -0.001),
    )


def test_empty_filter_matches_everything():
    assert parse_filter("").clauses == ()
    assert parse_filter(None).clauses == ()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("metrics.x >", "metrics.x >"),
        ("metrics.x > abc", "abc"),
        ("foo.x = 1", "foo"),
        ("metrics.x > 1 or metrics.y < 2", "or"),
        ("params.C = 1", "params.C"),
        ("metrics.x ~ 3", "~"),
        ("attributes.nope = 'x'", "nope"),
        ("metrics.x LIKE 'a%'", "LIKE"),
        ("params.C > '1'", ">"),
    ],
)
def test_malformed_filters_name_the_bad_token(text, named):
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert named in str(info.value)


def test_order_by():
    assert parse_order_by(["metrics.rmse ASC", "start_time DESC", "params.C"]) == [
        OrderKey("metric", "rmse", True),
        OrderKey("attribute", "start_time", False),
        OrderKey("param", "C", True),
    ]
