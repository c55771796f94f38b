"""Backing services of the local stack (MariaDB, RabbitMQ, FerretDB, and on
request Jaeger and Prometheus): install if missing, start if stopped, on loopback.

Each `ensure_*` returns at once when its port already answers. Each `stop_*`
stops only what we started, by the pid or marker recorded in the state dir.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.install import apt_install, go_binary, machine_lock
from devstack.process import (
    HOST,
    REPO_ROOT,
    clear_pid,
    log_path,
    pid_alive,
    port_open,
    read_pid,
    spawn,
    stop_pid,
    sub_dir,
    tail,
    wait_port,
    write_pid,
)

log = logging.getLogger(__name__)

MARIADB_PORT = 3306
RABBITMQ_PORT = 5672
FERRETDB_PORT = 27017
# FerretDB stores its documents in PostgreSQL (an unusual port, so a distribution's own
# cluster on 5432 never collides). Its SQLite handler pushes no filter but `{_id: <string>}`
# down to the database, so every other query scans the whole collection and slows as
# history grows; the PostgreSQL handler pushes equality filters down (docs/decisions.md D9).
POSTGRES_PORT = 5442
FERRETDB_POSTGRES_SQL = Path(__file__).with_name("ferretdb_postgres.sql")
FERRETDB_HANDLER = os.environ.get("ERP_FERRETDB_HANDLER", "postgresql")
FERRETDB_DEBUG_PORT = 8088
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_OTLP_HTTP_PORT = 4318
JAEGER_QUERY_PORT = 16686
PROMETHEUS_PORT = 9090

MARIADBD = Path("/usr/sbin/mariadbd")
MARIADB_DATA = Path("/var/lib/mysql")
MARIADB_LOG = Path("/run/mysqld/erp-mariadb.log")
RABBITMQ_SERVER = Path("/usr/sbin/rabbitmq-server")
RABBITMQ_PID_FILES = "/var/lib/rabbitmq/mnesia/*.pid"
PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
NANUM_FONTS = Path("/usr/share/fonts/truetype/nanum")
FERRETDB_MODULE = ("github.com/FerretDB/FerretDB", "v1.24.2")
# Jaeger v2.12.0 is tagged v1.75.0 for Go, the approved release (docs/decisions.md D1): the
# module path has no /v2 suffix, so its v2.x tags are not valid Go module versions.
JAEGER_MODULE = ("github.com/jaegertracing/jaeger", "v1.75.0")
JAEGER_PACKAGE = "./cmd/jaeger"
JAEGER_CONFIG = REPO_ROOT / "observability" / "jaeger" / "local.yaml"
DEFAULT_PROMETHEUS_CONFIG = REPO_ROOT / "observability" / "prometheus" / "prometheus.yml"

_PROVISION_SQL = """
CREATE DATABASE IF NOT EXISTS erp CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS erp_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'erp'@'127.0.0.1' IDENTIFIED BY 'erp';
CREATE USER IF NOT EXISTS 'erp'@'localhost' IDENTIFIED BY 'erp';
GRANT ALL PRIVILEGES ON erp.* TO 'erp'@'127.0.0.1', 'erp'@'localhost';
GRANT ALL PRIVILEGES ON erp_test.* TO 'erp'@'127.0.0.1', 'erp'@'localhost';
"""


@dataclass(frozen=True)
class BackingStatus:
    name: str
    address: str
    up: bool
    pid: int | None  # recorded pid if we started it; 0 when the pid is unknown
    log: Path | None


def _daemon_pid(pid_files: str) -> int:
    for path in glob.glob(pid_files):
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):
            continue
    return 0


def ensure_mariadb() -> None:
    if not port_open(MARIADB_PORT):
        install_missing()
        run_dir = Path("/run/mysqld")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "mysql", "mysql")
        if not (MARIADB_DATA / "mysql").is_dir():
            # The package initialises its data directory when it is installed; one that
            # lost it (or never had it) gets the same system tables here.
            log.info("initialising MariaDB's data directory %s", MARIADB_DATA)
            subprocess.run(
                ["mariadb-install-db", "--user=mysql", f"--datadir={MARIADB_DATA}"],
                check=True,
                capture_output=True,
            )
        log.info("starting MariaDB on %s:%d", HOST, MARIADB_PORT)
        MARIADB_LOG.unlink(missing_ok=True)
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                str(MARIADBD),
                "--",
                "--user=mysql",
                f"--bind-address={HOST}",
                f"--port={MARIADB_PORT}",
                # start-stop-daemon drops the server's stderr: its errors go here instead.
                f"--log-error={MARIADB_LOG}",
            ],
            check=True,
        )
        try:
            wait_port(MARIADB_PORT, 60)
        except TimeoutError as error:
            raise RuntimeError(f"MariaDB did not start: {error}\n{tail(MARIADB_LOG)}") from error
        write_pid("mariadb", _daemon_pid("/run/mysqld/mysqld.pid"))
    _provision_mariadb()


def _provision_mariadb() -> None:
    """Create the `erp` and `erp_test` databases and the `erp` user (idempotent)."""
    for attempt in range(20):
        done = subprocess.run(
            ["mariadb", "-uroot"], input=_PROVISION_SQL, text=True, capture_output=True
        )
        if done.returncode == 0:
            return
        if attempt == 19:
            raise RuntimeError(f"provisioning MariaDB failed: {done.stderr.strip()}")
        time.sleep(0.5)


def stop_mariadb() -> None:
    if read_pid("mariadb") is None:
        return
    if port_open(MARIADB_PORT):
        log.info("stopping MariaDB")
        subprocess.run(["mariadb-admin", "-uroot", "shutdown"], check=True)
    clear_pid("mariadb")


def _rabbitmq_env() -> dict[str, str]:
    # The node, epmd and the Erlang distribution port all stay on loopback.
    return {
        **os.environ,
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(RABBITMQ_PORT),
        "ERL_EPMD_ADDRESS": HOST,
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def ensure_rabbitmq(timeout: float = 120) -> None:
    if port_open(RABBITMQ_PORT):
        return
    install_missing()
    log.info("starting RabbitMQ on %s:%d", HOST, RABBITMQ_PORT)
    env = _rabbitmq_env()
    subprocess.run([str(RABBITMQ_SERVER), "-detached"], env=env, check=True)
    deadline = time.monotonic() + timeout
    while True:
        # await_startup fails at once until the node has registered with epmd.
        done = subprocess.run(
            ["rabbitmqctl", "--timeout", "30", "await_startup"],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 and port_open(RABBITMQ_PORT):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"RabbitMQ did not start in {timeout:.0f}s: {done.stderr.strip()}")
        time.sleep(1)
    write_pid("rabbitmq", _daemon_pid(RABBITMQ_PID_FILES))


def stop_rabbitmq() -> None:
    if read_pid("rabbitmq") is None:
        return
    if port_open(RABBITMQ_PORT):
        log.info("stopping RabbitMQ")
        # Given the pid file, `stop` returns only once the node's process is gone.
        pid_file = glob.glob(RABBITMQ_PID_FILES)[:1]
        subprocess.run(
            ["rabbitmqctl", "stop", *pid_file], env=_rabbitmq_env(), check=True, capture_output=True
        )
    clear_pid("rabbitmq")


def _start_owned(name: str, args: list[str], ports: list[int], timeout: float = 60) -> None:
    """Spawn a process we own, record its pid and wait for its ports."""
    process = spawn(name, args)
    write_pid(name, process.pid)
    try:
        for port in ports:
            wait_port(port, timeout, process)
    except (RuntimeError, TimeoutError) as error:
        stop_pid(process.pid)
        clear_pid(name)
        raise RuntimeError(f"{name} failed to start: {error}\n{tail(log_path(name))}") from error


def _stop_owned(name: str, expect: str) -> None:
    pid = read_pid(name)
    if pid:
        log.info("stopping %s (pid %d)", name, pid)
        stop_pid(pid, expect)
    clear_pid(name)


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        install_missing()
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent


def _postgres_data() -> Path:
    """In the postgres user's own home: a checkout's folders may not be reachable by it."""
    home = Path("/var/lib/postgresql")
    return home / "erp-ferretdb" if home.is_dir() else sub_dir("postgres")


def _as_postgres(
    *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        check=check,
        capture_output=True,
        text=True,
        input=input,
    )


def ensure_postgres() -> None:
    """A private PostgreSQL cluster under the state dir, only for FerretDB, on loopback."""
    bin_dir = _postgres_bin()
    if not port_open(POSTGRES_PORT):
        _start_postgres(bin_dir)
    _prepare_ferretdb_database(bin_dir)


def _start_postgres(bin_dir: Path) -> None:
    data = _postgres_data()
    data.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        log.info("initialising PostgreSQL cluster in %s", data)
        _as_postgres(
            str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"
        )
    log.info("starting PostgreSQL on %s:%d", HOST, POSTGRES_PORT)
    options = f"-p {POSTGRES_PORT} -k {data} -c listen_addresses={HOST}"
    started = _as_postgres(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(data / "postgres.log"),
        "-o",
        options,
        "-w",
        "-t",
        "60",
        "start",
        check=False,
    )
    if started.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL failed to start: {started.stderr}\n{tail(data / 'postgres.log')}"
        )
    write_pid("postgres", int((data / "postmaster.pid").read_text().split()[0]))


def _prepare_ferretdb_database(bin_dir: Path) -> None:
    """FerretDB's database, tuned so its pushed-down equality filters use indexes (D10)."""
    connection = ("-h", HOST, "-p", str(POSTGRES_PORT), "-U", "postgres")
    exists = _as_postgres(
        str(bin_dir / "psql"),
        *connection,
        "-tAc",
        "SELECT 1 FROM pg_database WHERE datname='ferretdb'",
    )
    if exists.stdout.strip() != "1":
        _as_postgres(str(bin_dir / "createdb"), *connection, "ferretdb")
    _as_postgres(
        str(bin_dir / "psql"),
        *connection,
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "ferretdb",
        input=FERRETDB_POSTGRES_SQL.read_text(),
    )


def stop_postgres() -> None:
    if read_pid("postgres") is None:
        return
    if port_open(POSTGRES_PORT):
        log.info("stopping PostgreSQL")
        _as_postgres(
            str(_postgres_bin() / "pg_ctl"),
            "-D",
            str(_postgres_data()),
            "-m",
            "fast",
            "-w",
            "stop",
            check=False,
        )
    clear_pid("postgres")


def ensure_ferretdb() -> None:
    if FERRETDB_HANDLER == "postgresql":
        ensure_postgres()
    if port_open(FERRETDB_PORT):
        return
    binary = ferretdb_binary()
    data = sub_dir("ferretdb")
    if FERRETDB_HANDLER == "postgresql":
        storage = [
            "--handler=postgresql",
            f"--postgresql-url=postgres://postgres@{HOST}:{POSTGRES_PORT}/ferretdb",
        ]
    else:
        storage = ["--handler=sqlite", f"--sqlite-url=file:{data}/"]
    log.info("starting FerretDB (%s) on %s:%d", FERRETDB_HANDLER, HOST, FERRETDB_PORT)
    _start_owned(
        "ferretdb",
        [
            str(binary),
            *storage,
            f"--state-dir={data}",
            f"--listen-addr={HOST}:{FERRETDB_PORT}",
            f"--debug-addr={HOST}:{FERRETDB_DEBUG_PORT}",
            "--telemetry=disable",
        ],
        [FERRETDB_PORT],
    )


def stop_ferretdb() -> None:
    _stop_owned("ferretdb", "ferretdb")


def ensure_jaeger() -> None:
    if port_open(JAEGER_OTLP_HTTP_PORT) and port_open(JAEGER_QUERY_PORT):
        return
    binary = jaeger_binary()
    log.info(
        "starting Jaeger (OTLP %s:%d, UI %s:%d)",
        HOST,
        JAEGER_OTLP_HTTP_PORT,
        HOST,
        JAEGER_QUERY_PORT,
    )
    _start_owned(
        "jaeger",
        [str(binary), "--config", str(JAEGER_CONFIG)],
        [JAEGER_OTLP_GRPC_PORT, JAEGER_OTLP_HTTP_PORT, JAEGER_QUERY_PORT],
    )


def stop_jaeger() -> None:
    _stop_owned("jaeger", "jaeger")


def ensure_prometheus(config: Path = DEFAULT_PROMETHEUS_CONFIG) -> None:
    if port_open(PROMETHEUS_PORT):
        pid = read_pid("prometheus")
        if pid and pid_alive(pid, "prometheus"):
            # Ours, perhaps started for another layout (`erp up --replicas 3` after
            # `erp up`): its local config was rewritten in place, and SIGHUP re-reads it.
            os.kill(pid, signal.SIGHUP)
        return
    if not config.exists():
        raise FileNotFoundError(f"no Prometheus config at {config}")
    install_missing(prometheus=True)
    log.info("starting Prometheus on %s:%d with %s", HOST, PROMETHEUS_PORT, config)
    _start_owned(
        "prometheus",
        [
            str(PROMETHEUS),
            f"--config.file={config.resolve()}",
            f"--storage.tsdb.path={sub_dir('prometheus')}",
            f"--web.listen-address={HOST}:{PROMETHEUS_PORT}",
        ],
        [PROMETHEUS_PORT],
    )


def stop_prometheus() -> None:
    _stop_owned("prometheus", "prometheus")


def ferretdb_binary() -> Path:
    version_txt = {"build/version/version.txt": f"{FERRETDB_MODULE[1]}\n"}
    return go_binary(
        *FERRETDB_MODULE, "./cmd/ferretdb", "ferretdb", probe=["--version"], extra_files=version_txt
    )


def jaeger_binary() -> Path:
    return go_binary(*JAEGER_MODULE, JAEGER_PACKAGE, "jaeger", probe=["version"])


def _missing_packages(*, prometheus: bool, gateway: bool, browser: bool = False) -> list[str]:
    """The Debian packages whose programs this machine lacks."""
    wanted = {
        "mariadb-server": MARIADBD.exists(),
        "mariadb-client": shutil.which("mariadb") is not None,
        "rabbitmq-server": RABBITMQ_SERVER.exists(),
        "postgresql": bool(glob.glob("/usr/lib/postgresql/*/bin/postgres")),
    }
    if prometheus:
        wanted["prometheus"] = PROMETHEUS.exists() and PROMTOOL.exists()
    if gateway:
        wanted["nginx"] = shutil.which("nginx") is not None
    if browser:
        wanted["chromium"] = shutil.which("chromium") is not None
        wanted["fonts-nanum"] = NANUM_FONTS.is_dir()
    return [package for package, present in wanted.items() if not present]


def install_missing(
    *,
    jaeger: bool = False,
    prometheus: bool = False,
    gateway: bool = False,
    browser: bool = False,
) -> None:
    """Install every missing Debian package in one apt-get call (nginx for the local
    gateway when asked; Chromium and the Korean fonts it draws the console's labels with
    for the browser tests when asked), then build the Go binaries that are missing
    (FerretDB always, Jaeger when asked). Starts nothing."""
    with machine_lock():
        missing = _missing_packages(prometheus=prometheus, gateway=gateway, browser=browser)
        if missing:
            apt_install(*missing)
        ferretdb_binary()
        if jaeger:
            jaeger_binary()


def ensure_infra(*, jaeger: bool = False, prometheus: Path | None = None) -> None:
    """Start the backing services the apps need, plus the optional ones asked for,
    installing what is missing first (under no start-up timeout)."""
    install_missing(jaeger=jaeger, prometheus=prometheus is not None)
    ensure_mariadb()
    ensure_rabbitmq()
    ensure_ferretdb()
    if jaeger:
        ensure_jaeger()
    if prometheus is not None:
        ensure_prometheus(prometheus)


def stop_infra() -> None:
    """Stop every backing service we started, the optional ones first."""
    for stop in (
        stop_prometheus,
        stop_jaeger,
        stop_ferretdb,
        stop_postgres,
        stop_rabbitmq,
        stop_mariadb,
    ):
        stop()


def backing_log(name: str) -> Path | None:
    """Where a backing service logs: our state dir, or the server's own place."""
    if name == "mariadb":
        return MARIADB_LOG
    if name == "rabbitmq":
        return next(Path("/var/log/rabbitmq").glob("rabbit@*.log"), None)
    if name == "postgres":
        return _postgres_data() / "postgres.log"
    return log_path(name)


# name, address, port, a word in the command line of its process
_BACKING = (
    ("mariadb", f"mysql://{HOST}:{MARIADB_PORT}", MARIADB_PORT, "mariadbd"),
    ("rabbitmq", f"amqp://{HOST}:{RABBITMQ_PORT}", RABBITMQ_PORT, "rabbit"),
    ("ferretdb", f"mongodb://{HOST}:{FERRETDB_PORT}", FERRETDB_PORT, "ferretdb"),
    ("postgres", f"postgresql://{HOST}:{POSTGRES_PORT}", POSTGRES_PORT, "postgres"),
    (
        "jaeger",
        f"http://{HOST}:{JAEGER_QUERY_PORT} (OTLP http://{HOST}:{JAEGER_OTLP_HTTP_PORT})",
        JAEGER_QUERY_PORT,
        "jaeger",
    ),
    ("prometheus", f"http://{HOST}:{PROMETHEUS_PORT}", PROMETHEUS_PORT, "prometheus"),
)
BACKING_NAMES = tuple(name for name, *_ in _BACKING)


def infra_status() -> list[BackingStatus]:
    statuses = []
    for name, address, port, expect in _BACKING:
        pid = read_pid(name)
        if pid and not pid_alive(pid, expect):
            pid = None
        statuses.append(BackingStatus(name, address, port_open(port), pid, backing_log(name)))
    return statuses
