"""notification-service against every pact that names it: ``POST /notify`` on the service
running as a real process, the WebSocket push through the hub's own message builder, and the
notification-stream entry through the stream's own store."""

from __future__ import annotations

from contracts.providers.messages import notification_producer
from contracts.support import Provider, assert_verified, verifier_for


def test_notification_service_honours_its_consumers_pacts(
    notification_provider: Provider, service_authorization: str
) -> None:
    verifier = (
        verifier_for(notification_provider.name)
        .add_transport(url=notification_provider.url)
        .message_handler(notification_producer())
        .add_custom_header("Authorization", service_authorization)
    )

    assert_verified(verifier)
