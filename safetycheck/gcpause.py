"""The cycle collector paused while start-up builds its large, acyclic tables."""

import gc
from contextlib import contextmanager


@contextmanager
def paused():
    """Disable the cycle collector for the block (also a decorator); nested use is harmless.

    Start-up makes millions of small objects and no cycles worth collecting: the collector would
    rescan the growing heap over and over for nothing (about half the cold start-up time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What the block made would sit in the youngest generation and be scanned three times
            # as it is promoted; freeze + unfreeze moves it straight to the oldest (two list splices).
            gc.freeze()
            gc.unfreeze()
            gc.enable()
