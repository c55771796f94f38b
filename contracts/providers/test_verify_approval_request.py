"""approval-request-service against every pact that names it: the HTTP interactions on the
service running as a real process (MongoDB on FerretDB, RabbitMQ), the ``approval.work``
messages through the publisher production uses, fed by ``workflow.handoff_message``."""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from contracts.providers.messages import handoff_producer
from contracts.support import Provider, assert_verified, verifier_for


def test_approval_request_service_honours_its_consumers_pacts(
    approval_request_provider: Provider,
    approvals_collection: Collection[dict[str, Any]],
    service_authorization: str,
) -> None:
    verifier = (
        verifier_for(approval_request_provider.name)
        .add_transport(url=approval_request_provider.url)
        .message_handler(handoff_producer(approvals_collection))
        .state_handler(approval_request_provider.states_url, body=True)
        .add_custom_header("Authorization", service_authorization)
    )

    assert_verified(verifier)
