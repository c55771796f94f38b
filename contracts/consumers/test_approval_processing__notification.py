"""approval-processing-service -> notification-service: ``POST /notify`` with
``approval_assigned`` once a hand-off is in the approver's inbox. The payload comes from the
consumer's own builder and goes out through ``notify_assigned``."""

from __future__ import annotations

import aiohttp
from pact import Pact, match

from contracts.support import service_token
from services.approval_processing.clients import notify_assigned
from services.approval_processing.consumer import assigned_notification
from services.approval_processing.inbox import WorkItem

CONSUMER = "approval-processing-service"
PROVIDER = "notification-service"


async def test_an_item_in_the_inbox_notifies_its_approver(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    item = WorkItem(
        requestId=12, step=2, requesterId=1, approverId=3, title="결재 요청", content="내용"
    )
    (
        pact.upon_receiving("an approval_assigned notification")
        .with_request("POST", "/notify")
        .with_header("Authorization", service_token())
        .with_body(
            {
                "employeeId": match.int(3),
                "type": "approval_assigned",
                "requestId": match.int(12),
                "step": match.int(2),
                "approverId": match.int(3),
                "title": match.str("결재 요청"),
            },
            "application/json",
        )
        .will_respond_with(202)
        .with_body({"delivered": match.bool(False)}, "application/json")
    )

    with pact.serve() as server:
        delivered = await notify_assigned(http, str(server.url), assigned_notification(item))

    assert delivered is False
