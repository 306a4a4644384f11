"""Nudge on this machine: the stack's resources in moto, driven like AWS drives them."""
