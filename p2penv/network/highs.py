"""A silent, single-threaded HiGHS instance: the constructor prints a licence banner on the C-level stdout, which
would land in the middle of every demo table and CLI output, so it is sent to /dev/null."""
from __future__ import annotations

import os
import sys

import highspy


def new_highs() -> highspy.Highs:
    """``highspy.Highs()`` with its banner suppressed and ``output_flag`` off."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    h.setOptionValue("output_flag", False)
    # HiGHS's thread scheduler is process-global: the first run fixes its size, and any later
    # instance asking for another size fails with status "Not Set". Every model here is small, so
    # all instances use one thread.
    h.setOptionValue("threads", 1)
    return h
