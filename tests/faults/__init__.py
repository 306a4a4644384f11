"""The fault suite: Nudge's real handlers on moto, driven the way AWS drives them, under injected faults.

- the stage: ``moto_stack`` (the stack in moto), ``virtual_time`` (one clock for Nudge, moto and
  botocore), ``ledger`` (what moto itself saw);
- AWS's part: ``lambda_runtime`` (invocations, timeouts, deaths), ``esm`` (the Kinesis event source
  mapping), ``sqs_consumer`` (the SQS event source), ``scheduler`` (EventBridge Scheduler), ``producer``;
- the faults: ``inject`` (botocore hooks: not executed, or executed and lost), ``crash`` (process
  deaths at effect boundaries), and poison records in ``scenarios``;
- the judging: ``workload`` (seeded customers), ``expected`` (``nudge replay``), ``measure``;
- ``scenario`` runs one seeded workload under one fault, ``scenarios`` lists the faults,
  ``test_faults`` asserts each, ``report`` prints the table of ``RELIABILITY.md``.
"""
