"""Customer data tools: why did (or didn't) a customer get a message, what Nudge holds, and erasure.

``tools.CustomerDataTools`` is what ``nudge explain``, ``export`` and ``erase`` run, against the
deployed stack or ``nudge local``, with an audit record of each call (``adapters/audit_log.py``);
``holdings`` reads every item of one customer, ``document`` turns them into the export.
"""

from .holdings import Holdings, read_holdings
from .tools import CustomerDataTools, ErasureResult, UnknownCustomer

__all__ = ["CustomerDataTools", "ErasureResult", "Holdings", "UnknownCustomer", "read_holdings"]
