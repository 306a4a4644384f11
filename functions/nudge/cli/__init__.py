"""The ``nudge`` command line: validate rules, replay events, and (later) run the stack locally."""
