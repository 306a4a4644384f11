"""The feedback function's composition root: the events stream, and the SMS phone index if any."""

from __future__ import annotations

from typing import Any

import boto3

from ..adapters.event_sink import KinesisEventSink
from ..adapters.sms_recipients import DynamoDBSmsRecipients
from ..config import FeedbackConfig
from ..feedback import FeedbackIntake, PhoneKey
from .retries import ABSORB_THROTTLING
from .secrets import unsubscribe_secret


def build_feedback_intake(config: FeedbackConfig, session: Any = None) -> FeedbackIntake:
    session = session or boto3.session.Session()
    sink = KinesisEventSink(session.client("kinesis", config=ABSORB_THROTTLING), config.events_stream_name)
    recipients = None
    if config.sms_recipients_table:
        recipients = DynamoDBSmsRecipients(
            session.client("dynamodb", config=ABSORB_THROTTLING),
            config.sms_recipients_table,
            PhoneKey(unsubscribe_secret(config, session)),
        )
    return FeedbackIntake(sink, recipients)
