"""The channel feedback path: what a provider reports about a message, back on the customer's stream.

Pure (no boto3): ``ses`` maps an SES event (an EventBridge event's ``detail``), ``sms`` an End User
Messaging SMS event or an inbound reply, each into zero or more event envelopes (``contracts``'
``message_*`` and ``unsubscribed`` events); ``intake`` takes one Lambda event, maps it, checks every
envelope with ``contracts.parse_event`` and hands them to an ``EventSink``. ``message_tags`` is how a
sent message carries its customer, rule, firing and step, written by delivery and read back here;
``phone_index`` is the keyed hash that lets an SMS reply (``STOP``) find its customer.
"""

from __future__ import annotations

from .intake import FeedbackIntake, FeedbackNotPut, Report
from .mapped import Mapped, Skip
from .message_tags import SentMessage, read_context, read_tags, ses_tags, sms_context
from .phone_index import PhoneKey
from .ports import EventSink, RecipientIndex, RecipientLookup

__all__ = [
    "EventSink",
    "FeedbackIntake",
    "FeedbackNotPut",
    "Mapped",
    "PhoneKey",
    "RecipientIndex",
    "RecipientLookup",
    "Report",
    "SentMessage",
    "Skip",
    "read_context",
    "read_tags",
    "ses_tags",
    "sms_context",
]
