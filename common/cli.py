"""Shared entry-point plumbing: quiet logging and one-line errors."""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from common.errors import UserError


def quiet_tf_logs() -> None:
    """Hides TensorFlow's C++ info lines (oneDNN notices) without disabling oneDNN."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Runs ``main``; a UserError becomes ``error: ...`` on stderr and exit code 2."""
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
