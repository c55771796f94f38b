"""employee-service, as a real process on MariaDB, against every pact that names it."""

from __future__ import annotations

from contracts.providers.employee_states import employee_states
from contracts.support import Provider, assert_verified, verifier_for


def test_employee_service_honours_its_consumers_pacts(
    employee_provider: Provider, service_authorization: str
) -> None:
    verifier = (
        verifier_for(employee_provider.name)
        .add_transport(url=employee_provider.url)
        .state_handler(employee_states(employee_provider, service_authorization))
        .add_custom_header("Authorization", service_authorization)
    )

    assert_verified(verifier)
