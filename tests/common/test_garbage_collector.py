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


@pytest.mark.usefixtures("restored_collector")
def test_settling_keeps_the_young_thresholds_and_freezes_what_is_loaded() -> None:
    young, middle, _ = gc.get_threshold()
    settle_garbage_collector(full_every=77)
    assert gc.get_threshold() == (young, middle, 77)
    assert gc.get_freeze_count() > 0
