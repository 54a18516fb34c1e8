"""Errors of the mask tool's state."""
from __future__ import annotations

from common.errors import UserError


class NotReady(UserError):
    """What was asked needs predictions or CAMs that the background computation has not
    delivered yet; the caller may wait and retry (a filter is then applied when ready)."""
