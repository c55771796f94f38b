"""One trace across REST, RabbitMQ and WebSocket hops, read back from a real Jaeger."""

from __future__ import annotations

import httpx

from tests.support import factories
from tests.support.auth import as_user
from tests.support.pipeline import final_status, item_arrives, listening
from tests.support.stack import Stack
from tests.support.traces import Trace, fetch_trace, new_traceparent

ARS, ES = "approval-request-service", "employee-service"
APS, NS = "approval-processing-service", "notification-service"


def _creation_complete(trace: Trace) -> bool:
    return bool(trace.named(NS, "ws push")) and bool(trace.named(APS, "approval.work process"))


async def test_creation_trace_runs_from_the_request_to_the_approvers_websocket(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    async with listening(notification_url, approver) as ws:
        trace_id, header = new_traceparent()
        created = await client.post(
            f"{approvals_url}/approvals",
            headers=header,
            json=factories.approval_body(requester, [approver]),
        )
        request_id = created.json()["requestId"]
        (assigned,) = await ws.wait_for(1, request_id)
        assert assigned["traceparent"].split("-")[1] == trace_id

    trace = await fetch_trace(trace_id, until=_creation_complete)
    server = trace.one(ARS, "POST /approvals")
    assert server.tags["erp.request_id"] == request_id
    lookup = trace.one(ES, "GET /employees")
    assert trace.descends(lookup, server)
    assert trace.descends(trace.one(ES, "SELECT"), lookup)
    assert any(trace.descends(s, server) for s in trace.named(ARS, ".insert"))
    # The outbox delivery of the hand-off: its span is the AMQP publish, in this trace.
    publish = trace.one(ARS, "approval publish")
    assert (publish.tags["erp.effect"], publish.tags["erp.attempt"]) == ("handoff", 1)
    assert trace.descends(publish, server)
    consume = trace.one(APS, "approval.work process")
    assert consume.parent == publish.span_id
    notify = trace.one(NS, "POST /notify")
    assert trace.descends(notify, consume)
    push = trace.one(NS, "ws push")
    assert push.parent == notify.span_id
    assert push.tags["erp.employee_id"] == approver


async def test_decision_trace_reaches_the_outbox_deliveries_and_links_to_the_creation(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    creation_id, creation_header = new_traceparent()
    created = await client.post(
        f"{approvals_url}/approvals",
        headers=creation_header,
        json=factories.approval_body(requester, [first, second]),
    )
    request_id = created.json()["requestId"]
    await item_arrives(client, processing_url, first, request_id)

    trace_id, header = new_traceparent()
    decided = await client.post(
        f"{processing_url}/process/{first}/{request_id}", json={"action": "approve"}, headers=header
    )
    assert decided.status_code == 200

    def complete(trace: Trace) -> bool:
        return len(trace.named(NS, "POST /notify")) >= 3 and bool(
            trace.named(APS, "approval.work process")
        )

    trace = await fetch_trace(trace_id, until=complete)
    entry = trace.one(APS, "POST /process/{approver_id}/{request_id}")
    result = trace.one(ARS, "POST /approvals/internal/result")
    assert trace.descends(result, entry)
    assert (result.tags["erp.request_id"], result.tags["erp.step"]) == (request_id, 1)
    assert (result.tags["erp.decision"], result.tags["erp.employee_id"]) == ("approved", first)
    assert any(link[0] == creation_id for link in result.links)
    # The decision's write: an update, or a findAndModify when it also takes the relay
    # lease (whether it does depends on when this request's lease last ran out).
    writes = trace.named(ARS, ".update") + trace.named(ARS, ".findAndModify")
    assert any(trace.descends(s, result) for s in writes)
    # The outbox deliveries: the hand-off to step 2 and the notifications, each a span of
    # its call in this trace, labelled with the effect it delivers.
    publish = trace.one(ARS, "approval publish")
    assert trace.descends(publish, result)
    assert publish.tags["erp.effect"] == "handoff"
    assert trace.one(APS, "approval.work process").parent == publish.span_id
    notified = trace.named(NS, "POST /notify")
    delivered = [n for n in notified if trace.spans[n.parent].tags.get("erp.effect") == "notify"]
    assert len(delivered) >= 2  # requester and approver
    assert all(trace.spans[n.parent].service == ARS for n in delivered)
    assert {trace.descends(n, result) for n in notified} == {True}


async def test_withdrawal_trace_reaches_the_inbox_and_the_notifications_and_links_to_the_creation(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    creation_id, creation_header = new_traceparent()
    created = await client.post(
        f"{approvals_url}/approvals",
        headers=creation_header,
        json=factories.approval_body(requester, [approver]),
    )
    request_id = created.json()["requestId"]
    await item_arrives(client, processing_url, approver, request_id)

    trace_id, header = new_traceparent()
    withdrawn = await client.post(
        f"{approvals_url}/approvals/{request_id}/withdraw", headers={**header, **as_user(requester)}
    )
    assert withdrawn.status_code == 200, withdrawn.text

    def complete(trace: Trace) -> bool:
        return len(trace.named(NS, "POST /notify")) >= 2 and bool(
            trace.named(APS, "approval.work process")
        )

    trace = await fetch_trace(trace_id, until=complete)
    server = trace.one(ARS, "POST /approvals/{request_id}/withdraw")
    assert (server.tags["erp.request_id"], server.tags["erp.transition"]) == (
        request_id,
        "withdrawn",
    )
    assert server.tags["erp.employee_id"] == requester
    assert any(link[0] == creation_id for link in server.links)
    writes = trace.named(ARS, ".update") + trace.named(ARS, ".findAndModify")
    assert any(trace.descends(s, server) for s in writes)
    # The withdrawal message, on the hand-off's route, consumed in this trace.
    publish = trace.one(ARS, "approval publish")
    assert (publish.tags["erp.effect"], trace.descends(publish, server)) == ("withdrawal", True)
    consume = trace.one(APS, "approval.work process")
    assert consume.parent == publish.span_id
    assert consume.tags["erp.transition"] == "withdrawn"
    notified = trace.named(NS, "POST /notify")
    assert {trace.spans[n.parent].tags.get("erp.effect") for n in notified} == {"notify"}
    assert {trace.descends(n, server) for n in notified} == {True}


async def test_cancellation_trace_reaches_employee_service_and_links_to_the_creation(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    creation_id, creation_header = new_traceparent()
    created = await client.post(
        f"{approvals_url}/approvals",
        headers=creation_header,
        json=factories.leave_body(requester, [approver]),
    )
    request_id = created.json()["requestId"]
    await item_arrives(client, processing_url, approver, request_id)
    decided = await client.post(
        f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
    )
    assert decided.status_code == 200, decided.text

    trace_id, header = new_traceparent()
    cancelled = await client.post(
        f"{approvals_url}/approvals/{request_id}/cancel",
        json={"reason": "취소"},
        headers={**header, **as_user(requester)},
    )
    assert cancelled.status_code == 200, cancelled.text

    def complete(trace: Trace) -> bool:
        return bool(trace.named(NS, "POST /notify")) and bool(trace.named(ES, "UPDATE"))

    trace = await fetch_trace(trace_id, until=complete)
    server = trace.one(ARS, "POST /approvals/{request_id}/cancel")
    assert (server.tags["erp.request_id"], server.tags["erp.transition"]) == (
        request_id,
        "cancelled",
    )
    assert any(link[0] == creation_id for link in server.links)
    cancel = trace.one(ES, "POST /leaves/internal/reservations/{request_id}/cancel")
    assert trace.spans[cancel.parent].tags.get("erp.effect") == "leave_cancel"
    assert trace.descends(cancel, server)
    assert any(trace.descends(s, cancel) for s in trace.named(ES, "UPDATE"))
    notified = trace.one(NS, "POST /notify")
    assert trace.descends(notified, server)


async def test_reassignment_trace_reaches_both_inboxes_and_links_to_the_creation(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, substitute = await factories.employees(client, employee_url, 3)
    creation_id, creation_header = new_traceparent()
    created = await client.post(
        f"{approvals_url}/approvals",
        headers=creation_header,
        json=factories.approval_body(requester, [approver]),
    )
    request_id = created.json()["requestId"]
    await item_arrives(client, processing_url, approver, request_id)

    trace_id, header = new_traceparent()
    reassigned = await client.post(
        f"{approvals_url}/approvals/{request_id}/steps/1/reassign",
        json={"approverId": substitute},
        headers={**header, **as_user(approver)},
    )
    assert reassigned.status_code == 200, reassigned.text

    def complete(trace: Trace) -> bool:
        return len(trace.named(APS, "approval.work process")) >= 2 and bool(
            trace.named(NS, "POST /notify")
        )

    trace = await fetch_trace(trace_id, until=complete)
    server = trace.one(ARS, "POST /approvals/{request_id}/steps/{step}/reassign")
    assert (server.tags["erp.request_id"], server.tags["erp.transition"]) == (
        request_id,
        "reassigned",
    )
    assert (server.tags["erp.employee_id"], server.tags["erp.step"]) == (approver, 1)
    assert any(link[0] == creation_id for link in server.links)
    writes = trace.named(ARS, ".update") + trace.named(ARS, ".findAndModify")
    assert any(trace.descends(s, server) for s in writes)
    # The removal on the former approver's route and the hand-off on the new one's, each
    # consumed in this trace; the new approver told from the hand-off's consumer.
    publishes = trace.named(ARS, "approval publish")
    assert sorted(p.tags["erp.effect"] for p in publishes) == ["handoff", "reassignment"]
    assert {trace.descends(p, server) for p in publishes} == {True}
    consumed = trace.named(APS, "approval.work process")
    assert {c.parent for c in consumed} == {p.span_id for p in publishes}
    assert "reassigned" in {c.tags.get("erp.transition") for c in consumed}
    assert {trace.descends(n, server) for n in trace.named(NS, "POST /notify")} == {True}


async def test_final_leave_approval_trace_reaches_the_sql_update(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.leave_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    trace_id, header = new_traceparent()
    await client.post(
        f"{processing_url}/process/{approver}/{request_id}",
        json={"action": "approve"},
        headers=header,
    )
    await final_status(client, approvals_url, request_id, "approved")

    # The confirmation approves the leave reserved when the request was made: an UPDATE.
    trace = await fetch_trace(trace_id, until=lambda t: bool(t.named(ES, "UPDATE")))
    leave = trace.one(ES, "POST /leaves/internal/approved")
    delivery = trace.spans[leave.parent]
    assert (delivery.service, delivery.tags["erp.effect"]) == (ARS, "leave")
    assert trace.descends(trace.one(ES, "UPDATE"), leave)
    assert trace.descends(leave, trace.one(APS, "POST /process/{approver_id}/{request_id}"))
    # A pool checkout is not a connection being made: no "connect" span for it.
    assert not trace.named(ES, "connect")


async def test_every_log_line_of_a_traced_request_carries_its_trace_id(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    trace_id, header = new_traceparent()
    created = await client.post(
        f"{approvals_url}/approvals",
        headers=header,
        json=factories.leave_body(requester, [approver]),
    )
    request_id = created.json()["requestId"]
    await item_arrives(client, processing_url, approver, request_id)
    await fetch_trace(trace_id, until=lambda t: bool(t.named(NS, "POST /notify")))

    lines = {
        package: [
            line
            for line in (stack.log_dir / f"{name}.log").read_text().splitlines()
            if f"request {request_id} " in line or f"approval {request_id} " in line
        ]
        for package, name in (("approval_request", ARS), ("approval_processing", APS))
    }
    assert lines["approval_request"], "the creation was not logged"
    assert lines["approval_processing"], "the hand-off was not logged"
    for package_lines in lines.values():
        for line in package_lines:
            assert f'"trace_id":"{trace_id}"' in line, line
            assert '"span_id":"' in line
