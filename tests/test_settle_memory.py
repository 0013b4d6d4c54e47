"""bot/telegram/app.py settle_memory, which ``sopbot run`` calls once the bot is set
up: what exists then is frozen out of the garbage collector's view, the youngest
generation is collected after GC_YOUNG_OBJECTS new objects, and garbage in cycles made
afterwards is still collected."""
from __future__ import annotations

import gc
import weakref

from bot.telegram.app import GC_YOUNG_OBJECTS, settle_memory


class _Node:
    pass


def test_settle_memory_freezes_what_exists_and_still_collects_new_cycles():
    threshold = gc.get_threshold()
    kept = _Node()  # made before: frozen, never walked by a collection again
    try:
        settle_memory()
        assert gc.get_freeze_count() > 10_000  # the modules' objects, the test's
        assert all(o is not kept for o in gc.get_objects())  # not in any generation
        assert gc.get_threshold()[0] == GC_YOUNG_OBJECTS
        assert gc.get_threshold()[1:] == threshold[1:]
        cycle = _Node()
        cycle.me = cycle  # garbage only a collection frees
        gone = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
