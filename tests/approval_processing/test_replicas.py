"""Which replica holds which approver's inbox, from the settings each replica starts with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.approval_processing.replicas import Ownership
from services.approval_processing.settings import ApprovalProcessingSettings
from services.common.messaging import PARTITIONS, handoff_partition, partition_of


@pytest.mark.parametrize("replicas", range(1, PARTITIONS + 1))
def test_every_partition_has_exactly_one_owner_whatever_the_replica_count(replicas: int) -> None:
    owned = [Ownership(k, replicas, ()).partitions for k in range(replicas)]

    assert sorted(p for share in owned for p in share) == list(range(PARTITIONS))
    assert all(share for share in owned)


def test_an_approvers_owner_holds_the_partition_the_approver_falls_in() -> None:
    ownership = [Ownership(k, 5, ()) for k in range(5)]
    for approver in range(1, 200):
        (holder,) = [o for o in ownership if o.owns(approver)]
        assert partition_of(approver) in holder.partitions
        assert all(o.owner_of(approver) == holder.index for o in ownership)


def test_a_hand_off_goes_to_the_partition_of_the_approver_it_waits_for() -> None:
    steps = [
        {"step": 1, "approverId": 13, "status": "approved"},
        {"step": 3, "approverId": 29, "status": "pending"},
        {"step": 2, "approverId": 14, "status": "pending"},
    ]

    assert handoff_partition({"requestId": 5, "steps": steps}) == partition_of(14)


def test_one_replica_owns_every_partition_and_needs_no_peers() -> None:
    settings = ApprovalProcessingSettings()
    ownership = Ownership(settings.replica_index, settings.replicas, tuple(settings.peers()))

    assert ownership.partitions == list(range(PARTITIONS))


@pytest.mark.parametrize(("index", "replicas"), [(3, 3), (1, 1), (5, 2)])
def test_a_replica_index_outside_the_replica_count_refuses_to_start(
    index: int, replicas: int
) -> None:
    with pytest.raises(ValidationError, match="refusing to start"):
        ApprovalProcessingSettings(
            replica_index=index, replicas=replicas, peer_urls="http://a-{index}:8000"
        )


def test_more_replicas_than_partitions_refuse_to_start() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 12"):
        ApprovalProcessingSettings(replicas=PARTITIONS + 1, peer_urls="http://a-{index}:8000")


def test_several_replicas_must_be_told_where_every_replica_answers() -> None:
    with pytest.raises(ValidationError, match="must name the 3 replicas"):
        ApprovalProcessingSettings(replicas=3, peer_urls="http://a:8000,http://b:8000")
    with pytest.raises(ValidationError, match="must name the 2 replicas"):
        ApprovalProcessingSettings(replicas=2)


def test_peer_urls_are_a_list_or_a_template_with_the_index() -> None:
    listed = ApprovalProcessingSettings(replicas=2, peer_urls=" http://a:1/ , http://b:2")
    templated = ApprovalProcessingSettings(
        replicas=3, replica_index=2, peer_urls="http://aps-{index}.peers:8000"
    )

    assert listed.peers() == ["http://a:1", "http://b:2"]
    assert templated.peers() == [f"http://aps-{i}.peers:8000" for i in range(3)]
