"""`erp`: start, stop and inspect the local stack (backing services and the
app services as plain processes). Also `python -m devstack`."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack import (
    apps,
    backing,
    console,
    demo,
    install,
    local,
    process,
    prometheus,
    topology,
)

log = logging.getLogger("erp")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [list(map(str, header)), *[[("-" if c is None else str(c)) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _show_infra() -> None:
    rows = [
        (s.name, s.address, "up" if s.up else "down", s.pid, s.log) for s in backing.infra_status()
    ]
    _table(("backing", "address", "state", "our pid", "log"), rows)


def _prometheus_config(
    args: argparse.Namespace, layout: topology.Topology | None = None
) -> Path | None:
    """The config given, else the deployed one aimed at `layout`'s processes."""
    if not args.with_prometheus:
        return None
    if args.prometheus_config is not None:
        return Path(args.prometheus_config)
    return prometheus.write_local_config(layout or topology.Topology())


def _export_traces_to_jaeger(args: argparse.Namespace) -> None:
    """With Jaeger running, the apps send it their spans (unless told otherwise), so the
    console's trace pages have something to draw."""
    if args.with_jaeger:
        os.environ.setdefault(
            "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{process.HOST}:{backing.JAEGER_OTLP_HTTP_PORT}"
        )


def _show_installed() -> None:
    """One line a step that installed or built something in this run, for the record
    (scripts/ci-cold.sh reads the `installed:` lines to split a cold run by phase)."""
    for step in install.timings():
        print(f"installed: {step.phase}: {step.what}: {step.seconds:.0f} s")


def install_all(args: argparse.Namespace) -> int:
    backing.install_missing(
        jaeger=args.with_jaeger,
        prometheus=args.with_prometheus,
        gateway=args.with_gateway or args.with_console,
        browser=args.with_console,
    )
    if args.with_console:
        console.build()
    _show_installed()
    if not install.timings():
        print("everything is installed already")
    return 0


def infra_up(args: argparse.Namespace) -> int:
    backing.ensure_infra(jaeger=args.with_jaeger, prometheus=_prometheus_config(args))
    _show_installed()
    _show_infra()
    return 0


def infra_down(_: argparse.Namespace) -> int:
    backing.stop_infra()
    _show_infra()
    return 0


def infra_status(_: argparse.Namespace) -> int:
    _show_infra()
    return 0


def build_console(_: argparse.Namespace) -> int:
    console.build()
    _show_installed()
    return 0


def up(args: argparse.Namespace) -> int:
    layout = topology.Topology(replicas=args.replicas)
    # nginx serves the console (and, with replicas, is the gateway), in the same apt call.
    backing.install_missing(jaeger=args.with_jaeger, prometheus=args.with_prometheus, gateway=True)
    try:
        console.build()
    except install.InstallError as error:
        log.warning("console not built, the stack starts without it: %s", error)
    backing.ensure_infra(jaeger=args.with_jaeger, prometheus=_prometheus_config(args, layout))
    _export_traces_to_jaeger(args)
    apps.migrate()
    if not local.start(layout):
        return 1
    _show_installed()
    served = console.serve_local(
        {s.package: layout.public_url(s) for s in apps.APP_SERVICES if s.available}
    )
    code = _status(layout, as_json=False)
    if served:
        print(f"web console: {served}")
    return code


def down(_: argparse.Namespace) -> int:
    local.stop()
    backing.stop_infra()
    return 0


def _status(layout: topology.Topology, *, as_json: bool) -> int:
    found = local.rows(layout)
    if as_json:
        print(json.dumps({"processes": local.as_json(found)}, indent=2))
        return 0
    rows = [
        (row.service, "-" if row.replica is None else row.replica, row.port, row.state, row.pid)
        for row in found
    ]
    _table(("service", "replica", "port", "state", "our pid"), rows)
    if layout.gateway:
        print(f"\n{layout.replicas} replicas a service; the gateway keeps the usual ports")
    print()
    _show_infra()
    return 0


def status(args: argparse.Namespace) -> int:
    return _status(topology.saved(local.topology_file()), as_json=args.json)


def logs(args: argparse.Namespace) -> int:
    try:
        name = apps.get_service(args.service).name
    except KeyError:
        name = args.service
    path = backing.backing_log(name) if name in backing.BACKING_NAMES else process.log_path(name)
    if path is None or not path.exists():
        print(f"no log for {name}" + (f" at {path}" if path else ""), file=sys.stderr)
        return 1
    print(path)
    if args.follow:
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(["tail", "-n", str(args.lines), "-f", str(path)], check=False)
        return 0
    print(process.tail(path, args.lines))
    return 0


def _add_infra_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--with-jaeger",
        action="store_true",
        help="also run Jaeger (OTLP on 127.0.0.1:4317/4318, UI on :16686)",
    )
    parser.add_argument(
        "--with-prometheus", action="store_true", help="also run Prometheus on 127.0.0.1:9090"
    )
    parser.add_argument(
        "--prometheus-config",
        type=Path,
        default=None,
        help="config file for --with-prometheus (default: the deployed one, "
        "observability/prometheus/prometheus.yml, aimed at the local processes)",
    )


def migrate(args: argparse.Namespace) -> int:
    backing.ensure_mariadb()
    apps.migrate()
    return 0


def watch(args: argparse.Namespace) -> int:
    """Print one employee's notifications as they arrive (reconnecting with ?after=)."""
    import asyncio

    from services.common.auth import AuthSettings, issue_token
    from services.notification.client import watch as watch_notifications

    token = issue_token(AuthSettings(), args.employee_id)

    async def run() -> None:
        stream = watch_notifications(args.url, args.employee_id, args.after, token=token)
        async for notification in stream:
            print(notification.model_dump_json(by_alias=True, exclude_none=True), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def token(args: argparse.Namespace) -> int:
    """Print a bearer token for local use, signed with a development secret: one committed to
    the repository (the default, the local cluster's), which every production service
    refuses. So no token printed here is ever accepted in production."""
    from services.common.auth import ADMIN, EMPLOYEE, AuthSettings, is_committed_secret, issue_token

    settings = AuthSettings()
    if settings.algorithm != "HS256" or not is_committed_secret(settings.secret):
        log.error(
            "erp token signs only with a development ERP_AUTH_SECRET (the default or the local "
            "cluster's); for any other deployment get tokens from its identity provider"
        )
        return 1
    if args.service:
        print(issue_token(settings, args.service, service=True, ttl_seconds=args.ttl))
    else:
        roles = [EMPLOYEE, ADMIN] if args.admin else [EMPLOYEE]
        print(issue_token(settings, args.subject, roles=roles, ttl_seconds=args.ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    install_parser = commands.add_parser(
        "install",
        help="install and build what the backing services need (apt, Go), starting nothing",
    )
    install_parser.add_argument("--with-jaeger", action="store_true", help="also build Jaeger")
    install_parser.add_argument(
        "--with-prometheus", action="store_true", help="also install Prometheus and promtool"
    )
    install_parser.add_argument(
        "--with-gateway", action="store_true", help="also install nginx for `up --replicas`"
    )
    install_parser.add_argument(
        "--with-console",
        action="store_true",
        help="also install nginx, Chromium and Korean fonts (the console's browser tests) "
        "and build the web console into console/dist",
    )
    install_parser.set_defaults(handler=install_all)
    commands.add_parser(
        "build-console",
        help="npm ci and npm run build in console/, each only when stale",
    ).set_defaults(handler=build_console)

    infra = commands.add_parser("infra", help="the backing services only")
    infra_commands = infra.add_subparsers(dest="infra_command", required=True)
    infra_up_parser = infra_commands.add_parser("up", help="install and start what is missing")
    _add_infra_options(infra_up_parser)
    infra_up_parser.set_defaults(handler=infra_up)
    infra_commands.add_parser("down", help="stop what we started").set_defaults(handler=infra_down)
    infra_commands.add_parser("status", help="what runs").set_defaults(handler=infra_status)

    up_parser = commands.add_parser(
        "up",
        help="backing services, migrations, then every app service",
        description="With --with-jaeger the apps send their spans to it "
        "(OTEL_EXPORTER_OTLP_ENDPOINT, unless set); with --with-prometheus it scrapes every "
        "process.",
    )
    _add_infra_options(up_parser)
    up_parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of each service; above 1 a local gateway keeps the usual ports "
        "(default: %(default)s)",
    )
    up_parser.set_defaults(handler=up)
    commands.add_parser(
        "down", help="stop the apps, then the backing services we started"
    ).set_defaults(handler=down)
    status_parser = commands.add_parser("status", help="what runs, and whether it is ready")
    status_parser.add_argument(
        "--json", action="store_true", help="every process as JSON: service, replica, pid, ..."
    )
    status_parser.set_defaults(handler=status)

    commands.add_parser(
        "migrate", help="run the employee database migrations (their own step)"
    ).set_defaults(handler=migrate)

    token_parser = commands.add_parser(
        "token", help="print a bearer token for an employee (--admin) or a service (--service)"
    )
    token_parser.add_argument("subject", nargs="?", default="1", help="employee id")
    token_parser.add_argument("--admin", action="store_true", help="add the admin role")
    token_parser.add_argument("--service", metavar="NAME", help="a service credential")
    token_parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds valid")
    token_parser.set_defaults(handler=token)

    watch_parser = commands.add_parser("watch", help="print an employee's live notifications")
    watch_parser.add_argument("employee_id", type=int)
    watch_parser.add_argument("--after", type=int, default=None, help="replay ids after this")
    watch_parser.add_argument("--url", default=apps.get_service("notification").url)
    watch_parser.set_defaults(handler=watch)

    demo.add_parser(commands, lambda package: apps.get_service(package).url)

    logs_parser = commands.add_parser("logs", help="print a service's log path and tail it")
    logs_parser.add_argument(
        "service", help="an app service, or ferretdb, jaeger, prometheus, rabbitmq"
    )
    logs_parser.add_argument("-n", "--lines", type=int, default=50)
    logs_parser.add_argument("-f", "--follow", action="store_true")
    logs_parser.set_defaults(handler=logs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        log.error("%s", error)
        return 1
