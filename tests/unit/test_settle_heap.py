"""`ekatalog serve` settles the heap before serving: what start-up built is frozen out of the
collector's reach and young collections run less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.service import YOUNG_COLLECTION_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    built_at_start = [[n] for n in range(10)]
    _, older, oldest = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, older, oldest)
    # A full collection no longer walks what was frozen.
    assert gc.get_count()[2] == 0
