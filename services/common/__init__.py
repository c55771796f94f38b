"""The only code the services share: settings, logging, telemetry, ops endpoints, clients."""

from services.common.app import build_app
from services.common.errors import DependencyUnavailable
from services.common.http import create_http_session, request_json
from services.common.metrics import track_dependency
from services.common.settings import ServiceSettings
from services.common.telemetry import current_traceparent, extract_context, inject_context

__all__ = [
    "DependencyUnavailable",
    "ServiceSettings",
    "build_app",
    "create_http_session",
    "current_traceparent",
    "extract_context",
    "inject_context",
    "request_json",
    "track_dependency",
]
