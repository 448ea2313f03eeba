"""Instructions per check_status call, counted by valgrind's callgrind: load-immune, unlike the
CPU times of `cargo bench --bench server` (not a test; a profiling aid). Run after
`cargo build --release`:

    python3 benches/callgrind.py [--http] [--calls N] [--base N] [--keep DIR] [--counter C] [-- SERVER FLAGS...]

It starts the simulator (`runcomfy-mcp simulate`), then the server under callgrind twice, with the
server's defaults (journal on in a temporary state directory, previews on, the default log level)
unless flags say otherwise: once driving BASE check_status calls and once BASE + N, all on one job
submitted through the server (so the journal knows it) that stays queued. The difference of the
two totals divided by N is the figure: start-up, initialize and the submit cancel out. Over
`--http`, the calls go round-robin over 8 Streamable HTTP sessions, one at a time (with
`-- --stateless`, 8 connections that each send `initialize` and get no session). `--keep DIR`
keeps the callgrind files for `callgrind_annotate` (whose function names need a build with
symbols: the release profile strips them, so build with `CARGO_PROFILE_RELEASE_STRIP=none`; the
counts are the same either way). Counts user-space instructions only; the kernel's share
(syscalls) is not in them.
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from cargo_target import binary  # noqa: E402 (after the path it is found on)

BIN = os.environ.get("BIN") or binary("release")
TOKEN = "bench-token-7f1e"
PROTOCOL = "2025-06-18"
INIT = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "callgrind", "version": "0"}}


def simulator():
    proc = subprocess.Popen(
        [BIN, "simulate", "--port", "0", "--queue-step-ms", "3600000", "--initial-queue-position", "5"],
        stdout=subprocess.PIPE, text=True, env={"RUST_LOG": "warn"})
    return proc, proc.stdout.readline().strip()


# What runs the server and counts: callgrind's instructions, or (`--counter`) strace's system
# calls or perf's software events (context switches, CPU migrations, task clock, wake-ups), all
# threads of the server.
COUNTERS = {
    "callgrind": lambda out: ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
    "strace": lambda out: ["strace", "-f", *os.environ.get("STRACE_FLAGS", "-c").split(), "-o", out],
    "perf": lambda out: ["perf", "stat", "-x", ",", "-o", out, "-e",
                         "task-clock,context-switches,cpu-migrations,sched:sched_wakeup", "--"],
}
COUNTER = "callgrind"


def server_command(out, flags, transport):
    cmd = [*COUNTERS[COUNTER](out), BIN, "serve", *flags]
    if transport == "http":
        cmd += ["--transport", "http", "--port", "0"]
    return cmd


def server_env(upstream, state):
    env = {"PATH": os.environ["PATH"], "RUNCOMFY_API_KEY": TOKEN, "RUNCOMFY_BASE_URL": upstream,
           "RUNCOMFY_STATE_DIR": state, "HOME": state}
    for name in ("RUST_LOG", "TOKIO_WORKER_THREADS"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def counts(out):
    """Counter name -> total, from one run's output file."""
    with open(out) as f:
        text = f.read()
    if COUNTER == "callgrind":
        return {"instructions": total(out)}
    found = {}
    for line in text.splitlines():
        if COUNTER == "strace":
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[3].isdigit():
                found[fields[-1]] = int(fields[3])
        else:
            fields = line.split(",")
            if len(fields) > 2 and fields[0].replace(".", "").isdigit():
                found[fields[2]] = float(fields[0])
    return found


def total(out):
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def check_ok(answer):
    result = answer.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise SystemExit(f"tool call failed: {answer}")
    return result


def stdio_run(calls, out, upstream, state, flags):
    proc = subprocess.Popen(server_command(out, flags, "stdio"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=server_env(upstream, state), text=True)
    next_id = 0

    def request(method, params):
        nonlocal next_id
        next_id += 1
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}) + "\n")
        proc.stdin.flush()
        while True:
            message = json.loads(proc.stdout.readline())
            if message.get("id") == next_id and "method" not in message:
                return message

    request("initialize", INIT)
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    job = submit(lambda m, p: request(m, p))
    for _ in range(calls):
        check_ok(request("tools/call", {"name": "check_status", "arguments": {"request_id": job}}))
    proc.stdin.close()
    proc.wait(timeout=120)


class Session:
    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port)
        self.session = None
        self.next_id = 0
        self.call("initialize", INIT)
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, body):
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "mcp-protocol-version": PROTOCOL}
        if self.session:
            headers["mcp-session-id"] = self.session
        self.conn.request("POST", "/mcp", json.dumps(body), headers)
        response = self.conn.getresponse()
        self.session = self.session or response.getheader("mcp-session-id")
        return response.status, response.read().decode()

    def call(self, method, params):
        self.next_id += 1
        status, body = self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        if status != 200:
            raise SystemExit(f"{status}: {body}")
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            for line in body.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    message = json.loads(line[5:])
                    if message.get("id") == self.next_id:
                        return message
        raise SystemExit(f"no answer in {body}")

    def close(self):
        # Stateless servers hand out no session: nothing to end.
        if self.session:
            self.conn.request("DELETE", "/mcp", headers={"mcp-session-id": self.session})
            self.conn.getresponse().read()
        self.conn.close()


def http_run(calls, out, upstream, state, flags):
    proc = subprocess.Popen(server_command(out, flags, "http"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=server_env(upstream, state), text=True)
    base = proc.stdout.readline().strip().removesuffix("/mcp")
    sessions = [Session(base) for _ in range(8)]
    job = submit(sessions[0].call)
    for i in range(calls):
        session = sessions[i % len(sessions)]
        check_ok(session.call("tools/call", {"name": "check_status", "arguments": {"request_id": job}}))
    for session in sessions:
        session.close()
    stop(proc)
    proc.wait(timeout=120)


def stop(proc):
    """SIGTERM to the server itself: under strace or perf it is the wrapper's child, and the
    wrapper writes its counts when the server exits."""
    if COUNTER == "callgrind":
        proc.terminate()
        return
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        for child in f.read().split():
            os.kill(int(child), 15)


def submit(call):
    answer = check_ok(call("tools/call", {"name": "generate_image", "arguments": {
        "prompt": "callgrind", "force_single": True}}))
    return answer["structuredContent"]["request_id"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--base", type=int, default=50)
    parser.add_argument("--keep")
    parser.add_argument("--counter", choices=sorted(COUNTERS), default="callgrind")
    parser.add_argument("flags", nargs="*")
    args = parser.parse_args()
    global COUNTER
    COUNTER = args.counter
    sim, upstream = simulator()
    outdir = args.keep or tempfile.mkdtemp()
    os.makedirs(outdir, exist_ok=True)
    run = http_run if args.http else stdio_run
    try:
        totals = []
        for calls in (args.base, args.base + args.calls):
            out = os.path.join(outdir, f"{COUNTER}.{'http' if args.http else 'stdio'}.{calls}")
            with tempfile.TemporaryDirectory() as state:
                run(calls, out, upstream, state, args.flags)
            totals.append(counts(out))
        label = f"{'http' if args.http else 'stdio'} {' '.join(args.flags) or 'defaults'}"
        if COUNTER == "callgrind":
            a, b = totals[0]["instructions"], totals[1]["instructions"]
            print(f"{label}: {(b - a) / args.calls:,.0f} instructions per check_status "
                  f"(totals {a:,} for {args.base} calls, {b:,} for {args.base + args.calls})")
            return
        print(f"{label}: {COUNTER} counts per check_status")
        names = sorted(set(totals[0]) | set(totals[1]), key=lambda n: -totals[1].get(n, 0))
        for name in names:
            per_call = (totals[1].get(name, 0) - totals[0].get(name, 0)) / args.calls
            if abs(per_call) >= 0.005:
                print(f"  {name:<24} {per_call:10.2f}")
    finally:
        sim.terminate()


if __name__ == "__main__":
    sys.exit(main())
