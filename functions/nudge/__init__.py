"""Nudge: behavioural triggers as config files, evaluated in real time on your own AWS account."""

__version__ = "0.1.0"
