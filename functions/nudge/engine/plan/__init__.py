"""Rules compiled into an immutable plan: operators, condition nodes, and per event name a ``Route``."""
