"""`erp demo`: a newcomer's first minute on a running stack. Creates three sample
employees (one asks, two approve) and prints the whole leave flow for them as commands
to paste, with each one's token and the ids they got.

The printed `# ->` lines are what each command answers; tests/docs runs the printed
script as it is and checks them, as it does for the README.
"""

from __future__ import annotations

import argparse
import json
import shlex
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.common.auth import ADMIN, EMPLOYEE, AuthSettings, issue_token

SAMPLE = (
    ("김철수", "개발팀", "사원"),
    ("이영희", "개발팀", "팀장"),
    ("박민수", "경영지원팀", "부장"),
)


@dataclass(frozen=True)
class Urls:
    employee: str
    approvals: str
    processing: str
    notification: str


def _create_employee(url: str, token: str, name: str, department: str, position: str) -> int:
    body = json.dumps({"name": name, "department": department, "position": position})
    request = urllib.request.Request(  # noqa: S310 - the URL is the local stack's, from our own table
        f"{url}/employees",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return int(json.load(answer)["id"])


def _next_weekday(start: date) -> date:
    day = start
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def leave_dates(today: date) -> tuple[date, date]:
    """Two working days from two weeks on (employee-service checks ``days`` against them)."""
    start = _next_weekday(today + timedelta(days=14))
    return start, _next_weekday(start + timedelta(days=1))


def script(urls: Urls, settings: AuthSettings, *, today: date) -> str:
    """Create the sample employees, then return the flow as a shell script to paste."""
    admin = issue_token(settings, "1", roles=[EMPLOYEE, ADMIN])
    requester, first, second = (
        _create_employee(urls.employee, admin, *person) for person in SAMPLE
    )
    tokens = {who: issue_token(settings, str(who)) for who in (requester, first, second)}
    start, end = leave_dates(today)
    leave = {
        "requesterId": requester,
        "title": "연차 신청",
        "content": "가족 여행",
        "steps": [{"step": 1, "approverId": first}, {"step": 2, "approverId": second}],
        "requestType": "LEAVE",
        "leaveInfo": {
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "days": 2,
            "leaveType": "ANNUAL",
            "reason": "가족 여행",
        },
    }
    json_header = "-H 'content-type: application/json'"
    names = {requester: SAMPLE[0][0], first: SAMPLE[1][0], second: SAMPLE[2][0]}
    return "\n".join(
        [
            f"# erp demo: {requester} {names[requester]} asks for leave; "
            f"{first} {names[first]} approves step 1, {second} {names[second]} step 2.",
            f"# Watch {names[requester]}'s notifications in a second terminal:",
            f"#   .venv/bin/erp watch {requester} --url {urls.notification}",
            f"T{requester}={tokens[requester]}",
            f"T{first}={tokens[first]}",
            f"T{second}={tokens[second]}",
            "",
            f"# {names[requester]} files a two-step leave request (it prints the request id):",
            f"REQUEST=$(curl -s -XPOST {urls.approvals}/approvals "
            f'-H "Authorization: Bearer $T{requester}" {json_header} '
            f"-d {shlex.quote(json.dumps(leave, ensure_ascii=False))} | tr -dc 0-9); "
            "echo $REQUEST",
            "",
            f"# {names[first]}'s inbox holds step 1; approve it:",
            f'curl -s {urls.processing}/process/{first} -H "Authorization: Bearer $T{first}"',
            f'# -> [{{"step": 1, "approverId": {first}, "requesterId": {requester}, ...}}]',
            f"curl -s -XPOST {urls.processing}/process/{first}/$REQUEST "
            f'-H "Authorization: Bearer $T{first}" {json_header} '
            """-d '{"action":"approve"}'""",
            '# -> {"step": 1, "status": "approved", ...}',
            "",
            f"# a moment later {names[second]} holds step 2:",
            f'curl -s {urls.processing}/process/{second} -H "Authorization: Bearer $T{second}"',
            f'# -> [{{"step": 2, "approverId": {second}, "requesterId": {requester}, ...}}]',
            f"curl -s -XPOST {urls.processing}/process/{second}/$REQUEST "
            f'-H "Authorization: Bearer $T{second}" {json_header} '
            """-d '{"action":"approve"}'""",
            '# -> {"step": 2, "status": "approved", ...}',
            "",
            "# the request is approved, and the leave is on record:",
            f'curl -s {urls.approvals}/approvals/$REQUEST -H "Authorization: Bearer $T{requester}"',
            '# -> {"finalStatus": "approved", ...}',
            f"curl -s '{urls.employee}/leaves/me?employeeId={requester}' "
            f'-H "Authorization: Bearer $T{requester}"',
            f'# -> [{{"employee_id": {requester}, "days": 2, "status": "approved", ...}}]',
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    urls = Urls(args.employee_url, args.approvals_url, args.processing_url, args.notification_url)
    print(script(urls, AuthSettings(), today=datetime.now(UTC).date()))
    return 0


def add_parser(commands: Any, service_url: Any) -> None:
    """`erp demo [--employee-url ...]`: the URLs default to the local stack's."""
    parser = commands.add_parser(
        "demo",
        help="on a running stack: create three sample employees, print the leave flow for them",
    )
    for package, option in (
        ("employee", "--employee-url"),
        ("approval_request", "--approvals-url"),
        ("approval_processing", "--processing-url"),
        ("notification", "--notification-url"),
    ):
        parser.add_argument(option, default=service_url(package))
    parser.set_defaults(handler=run)
