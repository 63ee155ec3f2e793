"""The cyclic garbage collector paused while parsing: process state, kept out of the core.

A module of its own, below the renderers and the stages that both pause it, so that
`validate` pauses it without importing the renderers (and with them asyncio).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while parsing; the collector's state is restored after.

    Parsing builds millions of acyclic containers and no cyclic garbage, yet the
    collector would walk the growing heap again and again: ~40% of the time at 10,000
    objects. Reference counting still frees everything that parsing throws away. The
    collector is process-wide and plans run in threads, so pauses are counted: the last
    one to end turns it back on, whatever the order they end in.
    """
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = True
