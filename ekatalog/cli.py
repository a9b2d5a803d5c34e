"""`ekatalog`: run the platform, apply migrations, mint local tokens, handle dead letters."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shared.auth import Role, mint_token
from shared.settings import ServiceSettings, SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.embedded import EmbeddedPostgres, Tansu

# name -> (settings prefix, default HTTP port)
SERVICES: dict[str, tuple[str, int]] = {
    "vendors": ("VENDORS", 8001),
    "catalog": ("CATALOG", 8002),
    "orders": ("ORDERS", 8003),
    "reporting": ("REPORTING", 8004),
}
DEFAULT_DATA_DIR = Path(".data")
# The orders service's clock file under the data dir (ORDERS_CLOCK_FILE, docs/operations.md).
CLOCK_FILE = "orders-clock"


def _service_module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"services.{name}.app")


def _settings_class(name: str) -> type[ServiceSettings]:
    module = _service_module(name)
    return next(
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
    )


def _build_app(name: str, **settings: Any) -> FastAPI:
    """A service's application built with these settings (and the environment), never started."""
    app: FastAPI = _service_module(name).create_app(_settings_class(name).from_env(**settings))
    return app


def consumer_groups(bootstrap: str) -> dict[str, tuple[str, set[str]]]:
    """Every service's consumer groups: group id -> (service, topics it reads)."""
    groups: dict[str, tuple[str, set[str]]] = {}
    for name in SERVICES:
        app = _build_app(
            name,
            database_url=f"postgresql://unused/ekatalog_{name}",
            kafka_bootstrap_servers=bootstrap,
            jwt_secret="unused",
        )
        for subscriber in app.state.broker.subscribers:
            _, topics = groups.setdefault(subscriber.group_id, (name, set()))
            topics.update(subscriber.topic_names)
    return groups


def _load_settings(name: str, **overrides: object) -> ServiceSettings:
    try:
        return _settings_class(name).from_env(**overrides)
    except SettingsError as exc:
        raise SystemExit(f"ekatalog {name}: {exc}") from None


def local_secret(data_dir: Path) -> str:
    """The HS256 secret of the local platform, made on first use and kept in the data dir."""
    path = data_dir / "jwt-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


# ---------------------------------------------------------------------------- serve / migrate


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shared.service import settle_heap

    settings = _load_settings(args.service)
    app = _service_module(args.service).create_app(settings)
    settle_heap()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        # httptools parses requests several times faster than h11 and, unlike h11's fixed
        # buffer, reads a large header block whole, so the service's own limit answers it with
        # 431 problem+json instead of a reset connection; uvloop runs the event loop.
        http="httptools",
        loop="uvloop",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.db import migrate_service

    unknown = [s for s in args.services if s not in SERVICES]
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    for name in args.services or list(SERVICES):
        settings = _load_settings(name)
        migrations = Path(_service_module(name).__file__).parent / "migrations"
        applied = asyncio.run(migrate_service(settings.database_url, name, migrations))
        print(f"{name}: {len(applied)} migration(s) applied" + "".join(f"\n  {a}" for a in applied))
    return 0


# ------------------------------------------------------------------------------------ replay


async def replay_log(dsn: str, *, since: datetime | None = None, from_start: bool = False) -> int:
    """Ask a service's relay to publish its logged events again; -1 when it has no log.

    From the start, from the first event at or after `since`, or by default from the checkpoint
    (every event some consumer may not have stored).
    """
    import asyncpg

    from shared import eventlog

    conn = await asyncpg.connect(dsn)
    try:
        if not await eventlog.has_event_log(conn):
            return -1
        if from_start:
            after = 0
        elif since is not None:
            after = await eventlog.position_at(conn, since)
        else:
            after = await eventlog.checkpoint(conn)
        return await eventlog.replay(conn, after)
    finally:
        await conn.close()


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time such as 2026-11-27T08:00+07:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def cmd_replay(args: argparse.Namespace) -> int:
    # Only the database is needed; the other required settings get placeholders.
    settings = _load_settings(args.service, kafka_bootstrap_servers="unused", jwt_secret="unused")
    queued = asyncio.run(
        replay_log(settings.database_url, since=args.since, from_start=args.from_start)
    )
    if queued < 0:
        raise SystemExit(f"ekatalog replay: {args.service} has no event log yet; run migrations")
    print(
        f"{args.service}: {queued} event(s) to publish again, in log order; the service's "
        "relay publishes them (at once if it is running, else when it starts)"
    )
    return 0


# ---------------------------------------------------------------------------------------- up


@dataclass
class ManagedService:
    name: str
    port: int
    env: dict[str, str]
    dsn: str
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts the embedded infrastructure and the services; restarts a service that crashes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = args.data_dir.resolve()
        self.stopping = False
        self.services: list[ManagedService] = []
        self.postgres: EmbeddedPostgres | None = None
        self.broker: Tansu | None = None
        self.bootstrap = ""

    def say(self, message: str) -> None:
        print(f"[ekatalog] {message}", flush=True)

    def start_infrastructure(self) -> tuple[str, dict[str, str]]:
        from shared.embedded import EmbeddedPostgres, Tansu, port_is_open

        if self.args.kafka_bootstrap:
            bootstrap = self.args.kafka_bootstrap
            self.say(f"Kafka: external at {bootstrap}")
        else:
            if port_is_open(self.args.kafka_port):
                raise SystemExit(f"port {self.args.kafka_port} is taken; pass --kafka-port")
            self.broker = Tansu(self.args.kafka_port)
            self.broker.start()
            bootstrap = self.broker.bootstrap_servers
            self.say(f"Kafka: embedded tansu broker at {bootstrap} (in memory)")
        names = self.args.services
        if self.args.database_url:
            dsns = {n: self.args.database_url.format(service=n) for n in names}
            self.say(f"PostgreSQL: external, {self.args.database_url}")
        else:
            if port_is_open(self.args.pg_port):
                raise SystemExit(f"port {self.args.pg_port} is taken; pass --pg-port")
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres", self.args.pg_port)
            self.postgres.start()
            from shared.db import ensure_database

            for name in names:
                asyncio.run(ensure_database(self.postgres.admin_dsn, f"ekatalog_{name}"))
            dsns = {n: self.postgres.dsn(f"ekatalog_{n}") for n in names}
            self.say(
                f"PostgreSQL: embedded at 127.0.0.1:{self.args.pg_port}, "
                f"data in {self.data_dir / 'postgres'}"
            )
        return bootstrap, dsns

    def plan_services(self, bootstrap: str, dsns: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        secret = local_secret(self.data_dir)
        for index, name in enumerate(self.args.services):
            prefix, default_port = SERVICES[name]
            port = self.args.base_port + index if self.args.base_port else default_port
            env = {
                **os.environ,
                f"{prefix}_DATABASE_URL": dsns[name],
                f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                f"{prefix}_HTTP_PORT": str(port),
                f"{prefix}_HTTP_HOST": self.args.host,
                f"{prefix}_LOG_FORMAT": self.args.log_format,
            }
            env.setdefault(f"{prefix}_JWT_SECRET", secret)
            if name == "orders":  # absent, so real time, unless `ekatalog demo` dates orders
                env.setdefault("ORDERS_CLOCK_FILE", str(self.data_dir / CLOCK_FILE))
            self.services.append(ManagedService(name, port, env, dsns[name]))

    def recover(self) -> None:
        """The embedded broker starts empty: queue again what a consumer may not have stored."""
        for service in self.services:
            queued = asyncio.run(replay_log(service.dsn))
            if queued > 0:
                self.say(
                    f"{service.name}: publishing again {queued} event(s) logged since every "
                    "consumer was last known to have stored them"
                )

    def drain(self) -> None:
        """Let the consumers catch up before the embedded broker forgets, and note how far
        every service's events got; the next start then publishes only what came after."""
        running = {
            s.name for s in self.services if s.ready and s.process and s.process.poll() is None
        }
        try:
            asyncio.run(self._drain(consumer_groups(self.bootstrap), running))
        except Exception as exc:  # the stop goes on whatever happens; the next start catches up
            self.say(
                f"consumers not drained ({exc!r}); the next start publishes recent events again"
            )

    async def _drain(self, groups: dict[str, tuple[str, set[str]]], running: set[str]) -> None:
        deadline = time.monotonic() + self.args.drain_seconds
        pending = list(self.services)
        while pending:
            for service in list(pending):
                if await self._drained(service, groups, running) is not None:
                    pending.remove(service)
            if not pending or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        for service in pending:
            self.say(
                f"{service.name}: consumers did not catch up within {self.args.drain_seconds}s; "
                "the next start publishes its recent events again"
            )

    async def _drained(
        self, service: ManagedService, groups: dict[str, tuple[str, set[str]]], running: set[str]
    ) -> bool | None:
        """True once the checkpoint is current, False when it cannot be, None: not yet."""
        import asyncpg

        from shared import eventlog

        conn = await asyncpg.connect(service.dsn)
        try:
            if not await eventlog.has_event_log(conn):
                return True
            done = await eventlog.checkpoint(conn)
            head, waiting = await eventlog.log_head(conn)
            if head <= done:
                return True
            topics = await eventlog.topics_after(conn, done)
            readers = {g: t & topics for g, (_, t) in groups.items() if t & topics}
            absent = sorted({groups[g][0] for g in readers} - running)
            if absent:
                self.say(
                    f"{service.name}: {', '.join(absent)} not running; the next start publishes "
                    f"again its events after position {done}"
                )
                return False
            if waiting:
                return None
            for group, group_topics in readers.items():
                if not await eventlog.consumed_everything(self.bootstrap, group, group_topics):
                    return None
            await eventlog.record_checkpoint(conn, head)
            self.say(f"{service.name}: every consumer stored its events up to position {head}")
            return True
        finally:
            await conn.close()

    def spawn(self, service: ManagedService) -> None:
        from shared.embedded import child_preexec

        service.process = subprocess.Popen(
            [sys.executable, "-m", "ekatalog.cli", "serve", service.name],
            env=service.env,
            preexec_fn=child_preexec,
        )
        service.ready = False
        service.started_at = time.monotonic()

    async def watch(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while not self.stopping:
                for service in self.services:
                    await self._check(client, service)
                if all(s.ready for s in self.services) and not getattr(self, "_announced", False):
                    self._announced = True
                    self.say("all services ready. Ctrl-C stops everything.")
                    self.say(
                        f"mint a token: ekatalog token --role catalogue_manager "
                        f"--data-dir {self.args.data_dir}"
                    )
                await asyncio.sleep(0.5)

    async def _check(self, client: httpx.AsyncClient, service: ManagedService) -> None:
        assert service.process is not None
        code = service.process.poll()
        if code is not None:
            if service.next_start == 0.0:
                delay = min(2**service.restarts, 30)
                service.next_start = time.monotonic() + delay
                self.say(f"{service.name} exited with code {code}; restarting in {delay}s")
            elif time.monotonic() >= service.next_start:
                service.restarts += 1
                service.next_start = 0.0
                self.spawn(service)
            return
        if service.ready:
            if time.monotonic() - service.started_at > 60:
                service.restarts = 0  # a long healthy run resets the restart backoff
            return
        try:
            response = await client.get(f"http://127.0.0.1:{service.port}/readyz")
        except httpx.HTTPError:
            return
        if response.status_code == 200:
            service.ready = True
            self.say(
                f"{service.name:<10} ready  http://{self.args.host}:{service.port}"
                f"  (openapi.json, asyncapi, metrics)"
            )

    def stop(self) -> None:
        from shared.embedded import stop_process

        self.stopping = True
        if self.broker is not None and self.services:
            self.drain()
        for service in self.services:
            if service.process is not None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            if service.process is not None:
                stop_process(service.process, signal.SIGTERM, timeout=15)
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        self.say("stopped")

    def run(self) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / "ekatalog.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another `ekatalog up` is using {self.data_dir}") from None
        loop = asyncio.new_event_loop()
        try:
            bootstrap, dsns = self.start_infrastructure()
            self.plan_services(bootstrap, dsns)
            if self.broker is not None:
                self.recover()
            for service in self.services:
                self.spawn(service)
            self.say("starting " + ", ".join(s.name for s in self.services) + " ...")
            watcher = loop.create_task(self.watch())
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, watcher.cancel)
            try:
                loop.run_until_complete(watcher)
            except asyncio.CancelledError:
                pass
            return 0
        finally:
            self.say("stopping ...")
            self.stop()
            loop.close()
            lock.close()


def cmd_up(args: argparse.Namespace) -> int:
    unknown = [s for s in args.services if s not in SERVICES]
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return Supervisor(args).run()


def cmd_health(args: argparse.Namespace) -> int:
    settings = _load_settings(args.service)
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    try:
        response = httpx.get(f"http://{host}:{settings.http_port}/readyz", timeout=3)
    except httpx.HTTPError as exc:
        print(f"{args.service}: not reachable: {exc}", file=sys.stderr)
        return 1
    print(response.text)
    return 0 if response.status_code == 200 else 1


# ------------------------------------------------------------------------------------ tokens


def cmd_token(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("EKATALOG_JWT_SECRET") or local_secret(args.data_dir)
    role = Role(args.role)
    if role is Role.VENDOR and not args.vendor:
        raise SystemExit("a vendor token needs --vendor VENDOR_ID")
    if role in (Role.PP, Role.PPK, Role.TREASURER) and not args.opd:
        raise SystemExit(f"a {role.value} token needs --opd OPD_ID")
    print(
        mint_token(
            secret,
            role=role,
            subject=args.subject,
            opd_id=args.opd,
            vendor_id=args.vendor,
            ttl_seconds=args.ttl,
        )
    )
    return 0


# ------------------------------------------------------------------------------ dead letters


def _bootstrap(args: argparse.Namespace) -> str:
    value = args.bootstrap or os.environ.get("EKATALOG_KAFKA_BOOTSTRAP_SERVERS")
    if not value:
        raise SystemExit("pass --bootstrap HOST:PORT or set EKATALOG_KAFKA_BOOTSTRAP_SERVERS")
    return value


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from shared.dlq import read_dead_letters

    letters = asyncio.run(read_dead_letters(_bootstrap(args), args.topic))
    for letter in letters:
        print(json.dumps(letter.summary(), ensure_ascii=False))
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from shared.dlq import read_dead_letters, redrive

    bootstrap = _bootstrap(args)
    letters = asyncio.run(read_dead_letters(bootstrap, args.topic))
    if args.event_id:
        letters = [d for d in letters if d.event_id in set(args.event_id)]
    count = asyncio.run(redrive(bootstrap, letters))
    print(f"re-published {count} dead letter(s) to their original topics")
    return 0


# ------------------------------------------------------------------------------------ schemas


def generated_documents() -> dict[Path, str]:
    """Every event's JSON Schema and each service's AsyncAPI document, as committed in docs/."""
    from faststream.specification import AsyncAPI

    from shared.events import event_json_schemas, registry

    documents: dict[Path, str] = {}
    for name in SERVICES:
        app = _build_app(
            name,
            database_url=f"postgresql://postgres/ekatalog_{name}",
            kafka_bootstrap_servers="kafka:9092",
            topic_prefix="",
            jwt_secret="unused",
        )
        spec = AsyncAPI(
            app.state.broker, title=app.title, version=app.version, description=app.description
        )
        documents[Path("asyncapi") / f"{name}.json"] = _pretty(
            json.loads(spec.to_specification().to_json())
        )
    for event_type, schema in event_json_schemas().items():
        model = registry.get(event_type)
        if model is not None and model.__module__.startswith("shared.contracts."):
            documents[Path("events") / f"{event_type}.json"] = _pretty(schema)
    return documents


def cmd_rebuild(args: argparse.Namespace) -> int:
    from services.reporting.rebuild import ProgressBar, RebuildFailed, rebuild

    settings = _load_settings(args.service)
    bar = ProgressBar(sys.stderr)
    try:
        result = asyncio.run(
            rebuild(settings, progress=bar, idle_seconds=args.idle_seconds, workers=args.workers)
        )
    except RebuildFailed as exc:
        raise SystemExit(f"ekatalog rebuild {args.service}: {exc}") from None
    finally:
        bar.close()
    print(
        f"rebuilt {args.service} from {result.events:,} events in {result.seconds:.1f} s"
        f" ({result.rate:,.0f}/s; {result.skipped} unreadable skipped)"
    )
    return 0


def _pretty(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def cmd_schemas(args: argparse.Namespace) -> int:
    documents = generated_documents()
    for relative, text in documents.items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(documents)} document(s) under {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ekatalog", description="Local e-Katalog and e-purchasing platform."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up",
        help="run the whole platform locally",
        description="Start PostgreSQL, a Kafka-compatible broker and the services; embedded "
        "unless --kafka-bootstrap / --database-url point elsewhere.",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the embedded database and local secret live (default .data)",
    )
    up.add_argument(
        "--services",
        nargs="+",
        default=list(SERVICES),
        metavar="NAME",
        help=f"services to run (default all: {' '.join(SERVICES)})",
    )
    up.add_argument("--host", default="127.0.0.1", help="HTTP bind address")
    up.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="first HTTP port, the next services count up (default 8001..8004)",
    )
    up.add_argument("--pg-port", type=int, default=5433, help="embedded PostgreSQL port")
    up.add_argument("--kafka-port", type=int, default=9092, help="embedded broker port")
    up.add_argument(
        "--kafka-bootstrap",
        default=os.environ.get("EKATALOG_KAFKA_BOOTSTRAP_SERVERS"),
        help="use this external Kafka instead of the embedded broker",
    )
    up.add_argument(
        "--database-url",
        default=os.environ.get("EKATALOG_DATABASE_URL"),
        help="external PostgreSQL DSN template with {service}, e.g. "
        "postgresql://u:p@db:5432/ekatalog_{service}",
    )
    up.add_argument("--log-format", choices=["console", "json"], default="console")
    up.add_argument(
        "--drain-seconds",
        type=float,
        default=20,
        help="on stop, how long consumers may take to catch up before the embedded broker "
        "stops (default 20); what they miss is published again at the next start",
    )
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser(
        "serve",
        help="run one service (the container entrypoint)",
        description="Run one service; configuration from its environment variables "
        "(e.g. VENDORS_DATABASE_URL, VENDORS_KAFKA_BOOTSTRAP_SERVERS, VENDORS_JWT_SECRET).",
    )
    serve.add_argument("service", choices=list(SERVICES))
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser(
        "health",
        help="exit 0 when a service is ready (container health check)",
        description="Ask a running service's /readyz, using its environment for the port.",
    )
    health.add_argument("service", choices=list(SERVICES))
    health.set_defaults(func=cmd_health)

    migrate = sub.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply migrations using each service's environment.",
    )
    migrate.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help=f"services to migrate (default all: {' '.join(SERVICES)})",
    )
    migrate.set_defaults(func=cmd_migrate)

    replay = sub.add_parser(
        "replay",
        help="publish a service's logged events again",
        description="Have a service's relay publish its logged events again, in log "
        "order, with their original ids and headers (consumers drop what they already stored). "
        "Only the service's database is needed, named by its environment as for migrate (e.g. "
        "VENDORS_DATABASE_URL). Without an option: the events after the last point every "
        "consumer was known to have stored.",
    )
    replay.add_argument("service", choices=list(SERVICES))
    start = replay.add_mutually_exclusive_group()
    start.add_argument(
        "--since",
        type=_timestamp,
        metavar="TIME",
        help="from the first event logged at or after TIME (ISO 8601; local time without an "
        "offset)",
    )
    start.add_argument("--from-start", action="store_true", help="the whole log")
    replay.set_defaults(func=cmd_replay)

    token = sub.add_parser(
        "token",
        help="mint a local access token",
        description="Mint an HS256 token signed with the local secret.",
    )
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--subject", help="the user id (default: made up)")
    token.add_argument("--opd", help="OPD id (required for pp, ppk, treasurer)")
    token.add_argument("--vendor", help="vendor id (required for vendor)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.add_argument(
        "--secret",
        help="signing secret (default: EKATALOG_JWT_SECRET or the data dir's jwt-secret)",
    )
    token.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    token.set_defaults(func=cmd_token)

    rebuild = sub.add_parser(
        "rebuild",
        help="rebuild a projection from the events on its topics",
        description="Replay every event into fresh tables and swap them in atomically; the "
        "live projection serves meanwhile. Uses the service's environment.",
    )
    rebuild.add_argument("service", choices=["reporting"])
    rebuild.add_argument(
        "--idle-seconds",
        type=float,
        default=10.0,
        help="give up when the topics stay quiet this long before the rebuild caught up",
    )
    rebuild.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that read and stage the topics' partitions in parallel (default: one"
        " per CPU but one, at most one per partition; 1 reads everything in the rebuild's"
        " process)",
    )
    rebuild.set_defaults(func=cmd_rebuild)

    dlq = sub.add_parser(
        "dlq", help="list or re-drive dead letters", description="Dead letters live in <topic>.dlq."
    )
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, func, text in (
        ("list", cmd_dlq_list, "print the dead letters of a topic as JSON lines"),
        ("redrive", cmd_dlq_redrive, "publish dead letters back to their original topic"),
    ):
        p = dlq_sub.add_parser(name, help=text, description=text)
        p.add_argument("topic", help="the original topic (or its .dlq)")
        p.add_argument(
            "--bootstrap", help="Kafka host:port (default EKATALOG_KAFKA_BOOTSTRAP_SERVERS)"
        )
        if name == "redrive":
            p.add_argument("--event-id", action="append", help="only these event ids (repeatable)")
        p.set_defaults(func=func)

    schemas = sub.add_parser(
        "schemas",
        help="write event JSON Schemas and AsyncAPI documents",
        description="Regenerate docs/events/*.json and docs/asyncapi/*.json (committed, "
        "diffed by the tests).",
    )
    schemas.add_argument("--out", type=Path, default=Path("docs"), help="the docs folder")
    schemas.set_defaults(func=cmd_schemas)

    demo = sub.add_parser(
        "demo",
        help="fill a running platform with a demo city through its APIs",
        description="Register vendors, storefronts, products, RUP packages and orders of a demo "
        "Kota Pekalongan through the public HTTP APIs of a running platform (`ekatalog up`); "
        "running it again adds nothing.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="where the services listen")
    demo.add_argument(
        "--base-port", type=int, default=8001, help="vendors' port; the rest count up"
    )
    demo.add_argument(
        "--scale", type=int, default=1, help="multiply vendors and orders (default 1)"
    )
    demo.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds the secret")
    demo.set_defaults(func=cmd_demo)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    from ekatalog.demo import DemoError, OrdersClock, Urls, run

    if args.scale < 1:
        raise SystemExit("--scale must be at least 1")
    secret = os.environ.get("EKATALOG_JWT_SECRET") or local_secret(args.data_dir)
    urls = Urls.local(args.host, args.base_port)
    clock = Path(os.environ.get("ORDERS_CLOCK_FILE") or args.data_dir / CLOCK_FILE)
    try:
        summary = asyncio.run(run(urls, secret, args.scale, clock=OrdersClock(clock)))
    except (DemoError, httpx.HTTPError) as exc:
        raise SystemExit(f"ekatalog demo: {exc}") from None
    print(
        json.dumps(
            {"created": summary.created, "found": summary.existing, "order_states": summary.states}
        )
    )
    print(f"dashboard: {urls.reporting}/dashboard")
    return 0


def main(argv: list[str] | None = None) -> int:
    from aiokafka.errors import KafkaError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KafkaError, OSError) as exc:
        raise SystemExit(f"ekatalog {args.command}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
