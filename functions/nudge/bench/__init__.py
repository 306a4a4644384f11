"""``nudge bench``: Nudge's cost and speed, measured against the per-event design, in one run.

The package imports nothing heavy at import time, so that ``nudge --help`` stays fast:

- ``workload``  the seeded synthetic workload (Zipf customers, sessions, a realistic event mix)
- ``variants``  generated rule sets of 10, 50 and 200 rules for ``--scaling``
- ``stream``    batches of records as the event source mapping hands them over, and the timers
- ``engine_run`` the pure engine in memory: Nudge's batched design and the per-event design
- ``baseline``  the per-event design against AWS (read, evaluate, write, schedule, send; per event)
- ``aws``       both designs against moto, every request counted through botocore hooks
- ``measure``   the counters, percentiles, state sizes and cold starts
- ``prices``    list prices (``prices.json``) and the itemized cost model
- ``report``    the JSON document, ratios, targets and the printed tables
- ``runner``    one benchmark from workload to report
"""
