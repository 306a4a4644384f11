"""The export: one JSON document with everything Nudge holds about a customer (a data-subject access request).

Built from ``Holdings`` only, so it shows what is stored, not what could be inferred: the profile
and the history of each consent, the stored events (the properties the rules read: Nudge keeps no
others), the pending waits and held sends, the decision log, and every activation with its delivery
status, attempts and message events. Times are ISO 8601 UTC.
"""

from __future__ import annotations

from typing import Any

from ..engine.explain import logged_decisions
from ..engine.runtime.eventlog import unflatten
from ..timefmt import iso
from .holdings import Holdings

DOCUMENT_VERSION = 1


def _consent(entries: dict[str, list[list[Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        channel: [
            {
                "at": iso(entry[0]),
                "granted": bool(entry[1]),
                "source": entry[2],
                **({"suppressed": entry[3]} if len(entry) > 3 else {}),
            }
            for entry in changes
        ]
        for channel, changes in entries.items()
    }


def _traits(profile: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {"value": value, "set_at": iso(ts)} for name, (value, ts) in sorted(profile.items()) if value is not None
    }


def export_document(held: Holdings, exported_at: int) -> dict[str, Any]:
    """The export of ``held``; the state's copy of the profile wins (it is the newer when both exist)."""
    state = held.state
    if state is not None and (state.profile or state.consent):
        traits, consent = state.profile, state.consent
    elif held.profile is not None:
        traits, consent = held.profile.profile, held.profile.consent
    else:
        traits, consent = {}, {}
    document: dict[str, Any] = {
        "version": DOCUMENT_VERSION,
        "customer_id": held.customer_id,
        "exported_at": iso(exported_at),
        "profile": {"traits": _traits(traits), "consent": _consent(consent)},
        "events": [],
        "pending_waits": [],
        "held_sends": [],
        "decisions": [],
        "activations": [
            {
                "firing_id": head.get("pk"),
                "rule": head.get("rule"),
                "channel": head.get("channel"),
                "fired_at": head.get("fired_at"),
                "status": head.get("status"),
                **({"provider_message_id": head["provider_message_id"]} if "provider_message_id" in head else {}),
                "history": [
                    {k: v for k, v in entry.items() if k not in ("pk", "customer_id", "expires_at")}
                    for entry in head["history"]
                ],
            }
            for head in held.activations
        ],
        "erased_at": iso(held.erased_at) if held.erased_at is not None else None,
    }
    if state is not None:
        document["events"] = sorted(
            (
                {"event": e.name, "event_id": e.id, "timestamp": iso(e.ts), "properties": unflatten(e.props)}
                for items in state.events.all().values()
                for e in items
            ),
            key=lambda e: (e["timestamp"], e["event_id"]),
        )
        document["pending_waits"] = [
            {
                "rule": rule_id,
                "key": key,
                "armed_at": iso(wait.arm),
                "due": iso(wait.due),
                "events": [e.id for e in wait.matched],
            }
            for (rule_id, key), wait in state.pending()
        ]
        document["held_sends"] = [
            {"rule": h.rule, "key": h.key, "step": h.step, "fired_at": iso(h.fired_at), "send_at": iso(h.send_at)}
            for h in state.held
        ]
        document["decisions"] = logged_decisions(state)
        document["sends_counted_by_caps"] = [{"send_at": iso(entry[0]), "channel": entry[1]} for entry in state.sent]
    return document
