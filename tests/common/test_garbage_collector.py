"""The garbage-collector settings a service takes once it has started (pure, in-process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common.app import settle_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_collector")
def test_settling_sets_the_thresholds_and_freezes_what_is_loaded() -> None:
    _, middle, _ = gc.get_threshold()
    settle_garbage_collector(young=12_345, full_every=77)
    assert gc.get_threshold() == (12_345, middle, 77)
    assert gc.get_freeze_count() > 0
