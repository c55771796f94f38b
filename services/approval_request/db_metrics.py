"""Times every MongoDB command into the shared dependency metrics (target ``mongodb``)."""

from __future__ import annotations

from pymongo import monitoring

from services.common.metrics import observe_dependency


class CommandTimer(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        observe_dependency("mongodb", event.command_name, event.duration_micros / 1e6, ok=True)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        observe_dependency("mongodb", event.command_name, event.duration_micros / 1e6, ok=False)
