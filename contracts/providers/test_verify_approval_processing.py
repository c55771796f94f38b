"""approval-processing-service against the pact of its own forwarding replicas: ``/process``
on the service running as a real process, called as a forwarded call is, with the approver's
own token (the owner checks the approver, as the replica that forwarded did)."""

from __future__ import annotations

from contracts.support import Provider, assert_verified, verifier_for
from services.common.auth import AuthSettings, issue_token

# The approver the pact's calls are for.
APPROVER = 7


def test_approval_processing_service_honours_its_forwarding_replicas_pact(
    approval_processing_provider: Provider,
) -> None:
    token = issue_token(AuthSettings(), APPROVER)
    verifier = (
        verifier_for(approval_processing_provider.name)
        .add_transport(url=approval_processing_provider.url)
        .add_custom_header("Authorization", f"Bearer {token}")
    )

    assert_verified(verifier)
