"""The provider-state hooks that verification drives exist only in test mode, and test mode
cannot be switched on in production."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.routing import NoMatchFound

from services.approval_processing.settings import ApprovalProcessingSettings
from services.approval_request.app import create_app as approval_request_app
from services.approval_request.settings import ApprovalRequestSettings
from services.employee.app import create_app as employee_app
from services.employee.settings import EmployeeSettings
from services.notification.settings import NotificationSettings

HOOK = "/_pact/provider-states"
APPS: list[tuple[Callable[[Any], FastAPI], type[Any]]] = [
    (employee_app, EmployeeSettings),
    (approval_request_app, ApprovalRequestSettings),
]


def state_hook(app: FastAPI) -> str | None:
    try:
        return str(app.url_path_for("set_up_state"))
    except NoMatchFound:
        return None


@pytest.mark.parametrize(("create_app", "settings"), APPS)
def test_the_state_hook_exists_only_in_test_mode(
    create_app: Callable[[Any], FastAPI], settings: type[Any]
) -> None:
    assert state_hook(create_app(settings())) is None
    assert state_hook(create_app(settings(environment="test", test_mode=True))) == HOOK


@pytest.mark.parametrize(
    "settings",
    [EmployeeSettings, ApprovalRequestSettings, ApprovalProcessingSettings, NotificationSettings],
)
def test_production_settings_refuse_test_mode(settings: type[Any]) -> None:
    with pytest.raises(ValidationError, match="test_mode"):
        settings(environment="production", test_mode=True)
