"""Load from wrk (Debian's `wrk` package) and the floor's server, shared by the HTTP benchmark
scripts.

wrk runs as a process of its own (C, several threads), so the load generator does not compete
with the servers for the interpreter the way an in-process Python client does. Each request
picks one of a path's targets (path, Authorization header, body) at random; `__N__` in a body is
replaced by a request counter modulo 1000. The server's CPU time per request is read from the
process before and after (it depends less on what else the machine runs than throughput).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from fastapi import FastAPI


def serve(app: FastAPI, port: int) -> None:
    """Serve a floor app with the same server options as `ekatalog serve`."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


def say(message: str) -> None:
    print(message, flush=True)


async def wait_ready(
    url: str, timeout: float = 90, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers 200; give up early when the `process` serving it exits."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise SystemExit(f"{url}: the server exited with {process.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not become ready within {timeout} s")


@dataclass
class Load:
    """One HTTP path under load: wrk issues `method` on one of `targets` (path, auth, body)."""

    label: str
    method: str
    targets: list[tuple[str, str | None, str | None]]


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms: float  # CPU time of the server process per request (less sensitive to machine load)


LUA = """
local targets = {%(targets)s}
local n = 0
request = function()
  n = n + 1
  local t = targets[math.random(#targets)]
  local headers = {["Content-Type"] = "application/json"}
  if t[2] ~= "" then headers["Authorization"] = t[2] end
  local body = nil
  if t[3] ~= "" then body = string.gsub(t[3], "__N__", tostring(n %% 1000)) end
  return wrk.format("%(method)s", t[1], headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%f %%f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def lua_string(value: str | None) -> str:
    return json.dumps(value or "")  # a JSON string literal is a valid Lua string literal here


def wrk_script(path: Load, directory: Path) -> Path:
    targets = ", ".join(
        "{" + ", ".join(lua_string(v) for v in target) + "}" for target in path.targets
    )
    script = directory / f"{path.label.replace(' ', '_').replace('/', '_')}.lua"
    script.write_text(LUA % {"targets": targets, "method": path.method})
    return script


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing wrk from Debian's packages")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and all its children, living and exited: PostgreSQL's
    postmaster and its backends."""
    parent = psutil.Process(pid)
    times = parent.cpu_times()
    total = float(times.children_user + times.children_system)
    for process in (parent, *parent.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_wrk(
    url: str,
    pid: int,
    path: Load,
    directory: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
) -> Result:
    """Load `url` (served by process `pid`) with wrk for `seconds`."""
    script = wrk_script(path, directory)
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        [
            wrk_binary(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",  # whole seconds: wrk reads "5.0s" as no duration
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = line.split()[1:]
    cpu = cpu_seconds(pid) - cpu_before
    return Result(
        requests_per_second=int(requests) / (int(duration_us) / 1e6),
        p50_ms=float(p50_us) / 1000,
        p99_ms=float(p99_us) / 1000,
        errors=int(errors),
        requests=int(requests),
        cpu_ms=1000 * cpu / max(1, int(requests)),
    )


@contextmanager
def profiling(
    pid: int, directory: Path | None, label: str, *, native: bool = False
) -> Iterator[None]:
    """With a `directory`, record py-spy samples of process `pid` meanwhile, as collapsed
    stacks (one line per stack and its count; `flamegraph.pl` or speedscope draw them)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{label}.txt"
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--output",
            str(out),
            "--format",
            "raw",
            "--rate",
            "100",
            # C frames need the process paused while its stack is read.
            *(["--native"] if native else ["--nonblocking"]),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(2)
        spy.wait(timeout=60)
        say(f"  profile: {out}")
