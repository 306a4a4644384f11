"""The customer data commands' arguments: bad input is a usage error (exit 2) before any AWS call."""

from __future__ import annotations

import pytest

from nudge.cli.customer_command import _since
from nudge.cli.main import main
from nudge.clock import WALL_CLOCK
from nudge.timefmt import parse_iso


def test_since_takes_a_duration_back_from_now_or_a_date_or_an_instant():
    before = WALL_CLOCK.now_ms()
    assert before - 30 * 86_400_000 - 1000 <= _since("30d") <= WALL_CLOCK.now_ms() - 30 * 86_400_000
    assert _since("2026-12-01") == parse_iso("2026-12-01T00:00:00Z")
    assert _since("2026-12-01T10:00:00Z") == parse_iso("2026-12-01T10:00:00Z")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "--since", "yesterday"], "nudge audit: --since 'yesterday'"),
        (["audit", "--since", "30x"], "nudge audit: --since '30x'"),
        (["explain", "c-1", "--at", "soon"], "nudge explain: --at 'soon'"),
    ],
)
def test_a_bad_time_is_a_usage_error_that_names_the_option(argv: list[str], message: str, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)
