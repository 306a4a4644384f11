"""Every property operator, on present, missing, nested and wrongly typed values."""

from __future__ import annotations

import pytest

from nudge.engine.language.rules import normalize_test
from nudge.engine.plan.operators import MISSING, compile_test, count_capacity, resolve


def holds(test: object, value: object) -> bool:
    return compile_test(normalize_test(test))(value)


@pytest.mark.parametrize(
    ("test", "value", "expected"),
    [
        ("SKU-1", "SKU-1", True),
        ("SKU-1", "SKU-2", False),
        ({"eq": 3}, 3.0, True),
        ({"eq": 1}, True, False),
        ({"eq": True}, True, True),
        ({"eq": "3"}, 3, False),
        ({"eq": "x"}, MISSING, False),
        ({"ne": "x"}, "y", True),
        ({"ne": "x"}, "x", False),
        ({"ne": "x"}, MISSING, True),
        ({"gt": 10}, 10.5, True),
        ({"gt": 10}, 10, False),
        ({"gte": 10}, 10, True),
        ({"lt": 10}, 9, True),
        ({"lt": 10}, 10, False),
        ({"lte": 10}, 10, True),
        ({"gt": 10}, "11", False),
        ({"gt": 10}, True, False),
        ({"gt": 10}, MISSING, False),
        ({"gte": "2026-11-01"}, "2026-11-22", True),
        ({"lt": "b"}, "a", True),
        ({"lt": "b"}, 1, False),
        ({"in": ["PT", "ES"]}, "PT", True),
        ({"in": ["PT", "ES"]}, "FR", False),
        ({"in": [1, 2]}, 2.0, True),
        ({"in": ["PT"]}, MISSING, False),
        ({"not_in": ["PT", "ES"]}, "FR", True),
        ({"not_in": ["PT", "ES"]}, "PT", False),
        ({"not_in": ["PT"]}, MISSING, True),
        ({"contains": "yoga"}, "blue yoga mat", True),
        ({"contains": "yoga"}, "mat", False),
        ({"contains": "SKU-1"}, ["SKU-1", "SKU-2"], True),
        ({"contains": "SKU-3"}, ["SKU-1", "SKU-2"], False),
        ({"contains": 1}, "1", False),
        ({"contains": "x"}, MISSING, False),
        ({"exists": True}, "anything", True),
        ({"exists": True}, None, False),
        ({"exists": True}, MISSING, False),
        ({"exists": False}, MISSING, True),
        ({"exists": False}, 0, False),
        ({"prefix": "/services"}, "/services/audit", True),
        ({"prefix": "/services"}, "/blog", False),
        ({"prefix": "/services"}, 5, False),
        ({"gte": 10, "lt": 100}, 50, True),
        ({"gte": 10, "lt": 100}, 100, False),
    ],
)
def test_operator(test: object, value: object, expected: bool):
    assert holds(test, value) is expected


def test_dotted_path_reaches_into_nested_properties():
    props = {"product": {"sku": "A", "dims": {"w": 3}}}
    assert resolve(props, "product.sku") == "A"
    assert resolve(props, "product.dims.w") == 3
    assert resolve(props, "product.colour") is MISSING
    assert resolve(props, "product.sku.x") is MISSING


@pytest.mark.parametrize(("test", "needed"), [({"gte": 3}, 3), ({"gt": 3}, 4), ({"eq": 2}, 3), ({"lte": 5}, 6)])
def test_count_capacity_is_what_deciding_the_count_needs(test: dict[str, int], needed: int):
    assert count_capacity(test) == needed
