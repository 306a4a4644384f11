"""The customer data tools' audit trail on moto: records kept whole, in time order, for their retention.

The table is the one ``provision`` creates from ``table_settings(settings).audit``, as ``nudge local``
does; records are written and read back through the adapter, and the raw items through DynamoDB's API.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest

from nudge.adapters.audit_log import AuditRecord, AuditUnavailable, DynamoDBAuditLog
from nudge.clock import VirtualClock
from nudge.local.provision import LocalResources
from nudge.timefmt import parse_iso

OPERATOR = "arn:aws:sts::123456789012:assumed-role/nudge-customer-data/ana"
DAY_MS = 86_400_000


def record(when: str, action: str = "explain", customer: str = "c-1", detail: str = "") -> AuditRecord:
    return AuditRecord(
        at=parse_iso(when), principal=OPERATOR, action=action, customer=customer, outcome="ok", detail=detail
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(parse_iso("2026-03-15T12:00:00Z"))


@pytest.fixture
def log(session: boto3.session.Session, resources: LocalResources, clock: VirtualClock) -> DynamoDBAuditLog:
    settings = resources.settings
    return DynamoDBAuditLog(
        session.client("dynamodb"), settings.names.audit_table, settings.audit_retention_days, clock=clock
    )


def raw_items(log: DynamoDBAuditLog) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = log.client.scan(TableName=log.table_name)["Items"]
    return items


def test_records_come_back_oldest_first_across_month_boundaries(log: DynamoDBAuditLog) -> None:
    # Whole seconds and milliseconds in the same second: the sort keys must compare as times.
    times = [
        "2026-01-31T23:59:59.999Z",
        "2026-02-01T00:00:00Z",
        "2026-02-01T00:00:00.500Z",
        "2026-02-01T00:00:01Z",
        "2026-02-28T23:59:59.999Z",
        "2026-03-01T00:00:00.001Z",
    ]
    written = [record(when, customer=f"c-{index}") for index, when in enumerate(times)]
    for item in random.Random(7).sample(written, len(written)):
        log.record(item)
    assert log.since(parse_iso("2026-01-01T00:00:00Z")) == written
    partitions = {item["pk"]["S"] for item in raw_items(log)}
    assert partitions == {"month#2026-01", "month#2026-02", "month#2026-03"}


def test_since_excludes_older_records_and_until_newer_ones_both_bounds_included(log: DynamoDBAuditLog) -> None:
    older, first, middle, last, newer = (
        record(when, customer=f"c-{index}")
        for index, when in enumerate(
            [
                "2026-02-10T09:59:59.999Z",
                "2026-02-10T10:00:00Z",
                "2026-02-20T10:00:00Z",
                "2026-03-05T10:00:00.250Z",
                "2026-03-05T10:00:00.251Z",
            ]
        )
    )
    for item in (older, first, middle, last, newer):
        log.record(item)
    assert log.since(first.at, last.at) == [first, middle, last]
    assert log.since(first.at + 1) == [middle, last, newer]
    assert log.since(last.at, first.at) == []


def test_without_until_the_months_up_to_now_are_read(log: DynamoDBAuditLog, clock: VirtualClock) -> None:
    january, now = record("2026-01-05T08:00:00Z"), record("2026-03-15T11:59:00Z")
    log.record(january)
    log.record(now)
    assert log.since(january.at) == [january, now]
    clock.set(parse_iso("2026-02-01T00:00:00Z"))  # March is not read before it has come
    assert log.since(january.at) == [january]


def test_every_record_expires_its_retention_after_it_was_made(
    session: boto3.session.Session, resources: LocalResources
) -> None:
    table = resources.settings.names.audit_table
    kept = record("2026-02-10T10:00:00.123Z", action="erase", customer="9f86d081", detail="3 activations")
    DynamoDBAuditLog(session.client("dynamodb"), table).record(kept)  # the default: 1095 days
    DynamoDBAuditLog(session.client("dynamodb"), table, retention_days=30).record(record("2026-02-10T10:00:01Z"))
    items = sorted(session.client("dynamodb").scan(TableName=table)["Items"], key=lambda item: item["sk"]["S"])
    assert [int(item["expires_at"]["N"]) for item in items] == [
        (kept.at + 1095 * DAY_MS) // 1000,
        (parse_iso("2026-02-10T10:00:01Z") + 30 * DAY_MS) // 1000,
    ]
    first, second = items
    assert first["sk"]["S"].startswith("2026-02-10T10:00:00.123Z#")
    assert {name: value for name, value in first.items() if name not in {"sk", "expires_at"}} == {
        "pk": {"S": "month#2026-02"},
        "at": {"N": str(kept.at)},
        "principal": {"S": OPERATOR},
        "action": {"S": "erase"},
        "customer": {"S": "9f86d081"},
        "outcome": {"S": "ok"},
        "detail": {"S": "3 activations"},
    }
    assert "detail" not in second  # omitted when empty, read back as ""


def test_two_records_of_the_same_millisecond_are_both_kept(log: DynamoDBAuditLog) -> None:
    same = record("2026-02-10T10:00:00.123Z")
    log.record(same)
    log.record(same)
    assert log.since(same.at) == [same, same]
    assert len({item["sk"]["S"] for item in raw_items(log)}) == 2


def test_a_month_of_many_pages_is_read_to_its_end(log: DynamoDBAuditLog) -> None:
    written = [record(f"2026-02-{day:02d}T10:00:00Z") for day in range(1, 6)]
    for item in written:
        log.record(item)
    queries: list[int] = []

    def one_item_per_page(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 1
        queries.append(1)

    log.client.meta.events.register("before-parameter-build.dynamodb.Query", one_item_per_page)
    assert log.since(written[0].at, written[-1].at) == written
    assert len(queries) >= len(written)  # a page per record: every LastEvaluatedKey followed


def test_a_missing_table_raises_audit_unavailable_naming_the_table(session: boto3.session.Session) -> None:
    log = DynamoDBAuditLog(session.client("dynamodb"), "shop2-audit")
    with pytest.raises(AuditUnavailable, match="shop2-audit") as raised:
        log.record(record("2026-02-10T10:00:00Z"))
    assert raised.value.table_name == "shop2-audit"
    assert raised.value.code == "ResourceNotFoundException"
    assert "ResourceNotFoundException" in str(raised.value)
    with pytest.raises(AuditUnavailable, match="shop2-audit"):
        log.since(parse_iso("2026-02-01T00:00:00Z"), parse_iso("2026-02-28T00:00:00Z"))


def test_a_time_before_1970_is_refused_before_anything_is_written(log: DynamoDBAuditLog) -> None:
    with pytest.raises(ValueError, match="epoch milliseconds"):
        log.record(AuditRecord(at=-1, principal=OPERATOR, action="explain", customer="c-1", outcome="ok"))
    assert raw_items(log) == []
