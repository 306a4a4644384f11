"""The event filters as the local stack applies them (moto does not evaluate filter criteria)."""

from __future__ import annotations

import json

from nudge.engine import compile_rules, load_rules_or_raise
from nudge.evaluator.source_filters import event_filter_patterns, record_passes

PATTERNS = event_filter_patterns(compile_rules(load_rules_or_raise("rules")))


def data(document: object) -> bytes:
    return json.dumps(document).encode()


def test_referenced_events_pass_and_others_are_filtered_out():
    assert record_passes(PATTERNS, data({"event": "add_to_cart", "customer_id": "c"}))
    assert record_passes(PATTERNS, data({"event": "identify"}))
    assert not record_passes(PATTERNS, data({"event": "remove_from_cart"}))
    assert not record_passes(PATTERNS, data({"event": "Add To Cart"}))


def test_timers_pass():
    assert record_passes(PATTERNS, data({"type": "nudge.timer", "customer_id": "c"}))


def test_json_without_a_valid_event_passes_so_it_reaches_the_dead_letter_path():
    assert record_passes(PATTERNS, data({"customer_id": "c"}))
    assert record_passes(PATTERNS, data({"event": None}))
    assert record_passes(PATTERNS, data({"event": ""}))


def test_data_that_is_not_json_is_dropped_as_lambda_drops_it():
    assert not record_passes(PATTERNS, b"not json")
    assert not record_passes(PATTERNS, bytes([0xFF, 0xFE]))
    assert not record_passes(PATTERNS, data(["a", "list"]))


def test_a_record_nested_too_deep_to_read_reaches_the_function_which_parks_it():
    assert record_passes(PATTERNS, b"[" * 5000 + b"]" * 5000)
