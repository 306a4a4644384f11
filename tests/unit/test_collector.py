"""The evaluator's collector settings, and that the benchmark gives them back."""

from __future__ import annotations

import gc

from nudge.evaluator.collector import YOUNG_GENERATION, tuned_collector


def test_tuned_collector_raises_the_young_threshold_freezes_and_restores_both():
    before = gc.get_threshold()
    with tuned_collector():
        assert gc.get_threshold() == (YOUNG_GENERATION, before[1], before[2])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
