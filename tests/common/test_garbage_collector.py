"""The garbage-collector settings a service takes once it has started (pure, in-process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common.app import settle_garbage_collector
from services.common.settings import ServiceSettings
from services.notification.settings import NotificationSettings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_full_collections_keep_cpythons_pace_except_where_sockets_are_held() -> None:
    assert ServiceSettings().gc_full_collection_every == 10
    assert NotificationSettings().gc_full_collection_every == 100


def test_young_collections_wait_for_ten_times_cpythons_net_allocations() -> None:
    assert ServiceSettings().gc_young_collection_threshold == 20_000
    assert NotificationSettings().gc_young_collection_threshold == 20_000


@pytest.mark.usefixtures("restored_collector")
def test_settling_sets_the_thresholds_and_freezes_what_is_loaded() -> None:
    _, middle, _ = gc.get_threshold()
    settle_garbage_collector(young=12_345, full_every=77)
    assert gc.get_threshold() == (12_345, middle, 77)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_collector")
def test_a_batch_of_short_lived_objects_triggers_no_young_collection() -> None:
    """What a traced service does all the time: ~8,000 objects (a span batch) live until
    the batch is exported, then go. At CPython's 2,000 that walks them several times."""
    settle_garbage_collector(young=20_000, full_every=10)
    before = gc.get_stats()[0]["collections"]
    for _ in range(50):
        batch = [{"attributes": {}} for _ in range(4_000)]
        del batch
    assert gc.get_stats()[0]["collections"] == before
