"""The engine at work: per-customer state, its event log and codec, and the semantics that decide."""
