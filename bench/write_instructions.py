"""Instructions per vendor write, counted by valgrind: a figure the machine's noise leaves alone.

    .venv/bin/python bench/write_instructions.py [--writes 1000] [--cpu]

The HTTP benchmarks measure throughput and CPU time, which on a shared two-core machine move by
10 to 20 % between runs of the same code: more than most single changes to the request path
gain. This runs the vendors app in process on an embedded PostgreSQL and tansu broker, drives
`PUT /vendors/{id}` (the write path of `bench/http_paths.py`) straight through ASGI from 32
concurrent tasks (no HTTP server or client in the process), and counts the instructions the
process executes for the measured writes under callgrind (`valgrind`, from Debian's package):
the same code gives the same count within 0.1 %, whatever else runs. The count covers the app,
its outbox relay and asyncpg; not PostgreSQL, tansu or the HTTP server. Compare two commits
by running this on each. `--cpu` runs without valgrind and prints CPU time per write instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.vendors.api import DeclarationBody
from shared.embedded import EmbeddedPostgres, Tansu, free_port
from tests.support import Infra, http_scope, scratch_database
from tests.vendors.helpers import start_service, vendor_auth

CONCURRENCY = 32
VENDORS = 32
WARM_UP = 500
COUNTING = "WRITE_INSTRUCTIONS_COUNTING"

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
Request = tuple[str, list[tuple[bytes, bytes]], bytes]


async def put(app: App, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One request through the app's ASGI interface; its status."""
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(http_scope("PUT", path, headers), receive, send)
    return status


async def drive(app: App, requests: list[Request], writes: int) -> None:
    """`writes` requests from CONCURRENCY tasks, each changing its vendor's address."""
    counter = iter(range(writes))

    async def client() -> None:
        for n in counter:
            path, headers, body = requests[n % len(requests)]
            status = await put(app, path, headers, body.replace(b"__N__", str(n).encode()))
            if status != 200:
                raise SystemExit(f"PUT {path} answered {status}")

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


def callgrind(switch: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True
    )


async def measure(writes: int, counting: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        postgres, broker = EmbeddedPostgres(Path(tmp) / "pg", free_port()), Tansu(free_port())
        postgres.start(durable=False)
        broker.start()
        try:
            infra = Infra(postgres.admin_dsn, broker.bootstrap_servers)
            prefix = f"bench{uuid.uuid4().hex[:6]}."
            async with scratch_database(infra) as db, start_service(infra, db, prefix) as service:
                requests: list[Request] = []
                for _ in range(VENDORS):
                    vendor = await service.verified()
                    body = {name: vendor[name] for name in DeclarationBody.model_fields}
                    body["address"] = "Jl. Hayam Wuruk __N__, Pekalongan"
                    token = vendor_auth(vendor["vendor_id"])["Authorization"]
                    headers = [
                        (b"content-type", b"application/json"),
                        (b"authorization", token.encode()),
                        (b"host", b"bench"),
                    ]
                    requests.append(
                        (f"/vendors/{vendor['vendor_id']}", headers, json.dumps(body).encode())
                    )
                await drive(service.app, requests, WARM_UP)
                if counting:
                    callgrind("on")
                cpu = time.process_time()
                await drive(service.app, requests, writes)
                cpu = time.process_time() - cpu
                if counting:
                    callgrind("off")
                else:
                    print(f"{writes} writes: {1000 * cpu / writes:.3f} ms CPU per write")
        finally:
            broker.stop()
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--cpu", action="store_true", help="CPU time per write, no valgrind")
    args = parser.parse_args()
    if args.cpu or os.environ.get(COUNTING):
        asyncio.run(measure(args.writes, counting=not args.cpu))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind (or use --cpu)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--writes",
                str(args.writes),
            ],
            env={**os.environ, COUNTING: "1"},
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise SystemExit(run.stderr[-3000:])
        totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
        instructions = int(totals[0].split()[1])
        print(f"{args.writes} writes: {instructions / args.writes:,.0f} instructions per write")


if __name__ == "__main__":
    main()
