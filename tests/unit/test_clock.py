"""The one clock: epoch milliseconds, standing still for replays and tests, or running at a speed."""

from __future__ import annotations

import time

import pytest

from nudge.clock import WALL_CLOCK, VirtualClock


def test_the_wall_clock_reads_epoch_milliseconds():
    before = time.time_ns() // 1_000_000
    now = WALL_CLOCK.now_ms()
    assert isinstance(now, int)
    assert before <= now <= time.time_ns() // 1_000_000


def test_a_standing_clock_moves_only_when_told():
    clock = VirtualClock(1_000)
    assert clock.now_ms() == 1_000
    clock.set(5_000)
    assert clock.now_ms() == 5_000
    clock.advance(250)
    assert clock.now_ms() == 5_250
    clock.advance_to(4_000)  # already passed: stays
    assert clock.now_ms() == 5_250
    clock.advance_to(9_000)
    assert clock.now_ms() == 9_000
    clock.set(2_000)  # a test may go back
    assert clock.now_ms() == 2_000
    assert VirtualClock().now_ms() == 0


def test_a_running_clock_follows_its_wall_at_its_speed():
    wall = VirtualClock(100_000)
    clock = VirtualClock(speed=60.0, wall=wall)
    assert clock.now_ms() == 100_000  # starts at the wall's time
    wall.advance(1_000)
    assert clock.now_ms() == 160_000
    clock.set(1_000_000)  # moved, and running on from there
    wall.advance(500)
    assert clock.now_ms() == 1_030_000
    clock.advance_to(1_000_000)  # passed: a running clock is not pulled back either
    assert clock.now_ms() == 1_030_000


def test_a_running_clock_can_start_at_a_given_time():
    wall = VirtualClock(5_000)
    clock = VirtualClock(1_000, speed=2.0, wall=wall)
    wall.advance(10)
    assert clock.now_ms() == 1_020


def test_a_clock_cannot_run_backwards_or_stand_by_speed_zero():
    with pytest.raises(ValueError, match="positive"):
        VirtualClock(speed=0)
