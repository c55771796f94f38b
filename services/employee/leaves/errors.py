"""What the leave rules refuse with; routers map these to status codes."""

from __future__ import annotations


class UnknownEmployee(Exception):
    pass


class InvalidLeave(Exception):
    pass


class NotFound(Exception):
    pass


class Refused(Exception):
    """A business-rule refusal: ``reason`` labels the metric, ``detail`` is the answer."""

    def __init__(self, reason: str, detail: str, *, status_code: int = 400) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status_code = status_code


def unknown_type(code: str) -> Refused:
    return Refused("unknown_type", f"Unknown leave type {code}")


def conflict(detail: str) -> Refused:
    return Refused("conflict", detail, status_code=409)
