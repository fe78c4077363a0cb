"""Counting the Python functions a piece of code enters (the counted guards of issue 16:
no closure, wrapper or generator per call or per item)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any, Callable


def python_frames(run: Callable[[], Any], skip: tuple[str, ...] = ()) -> Counter:
    """The Python functions `run` enters, by file's base name and qualified name; files
    whose path ends with one of `skip` (the test's own file, libvirt's binding wrappers)
    are left out."""
    frames: Counter = Counter()

    def profile(frame, event, _arg):
        if event == "call" and not (skip and frame.f_code.co_filename.endswith(skip)):
            frames[(os.path.basename(frame.f_code.co_filename), frame.f_code.co_qualname)] += 1
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return frames
