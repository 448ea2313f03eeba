"""One-off measurement of the HTTP transports (not a test): round-trip time of `ping` over
Streamable HTTP (session and stateless) and legacy SSE, resident memory idle and with many
sessions open, and the time from SIGTERM to exit. Run after `cargo build --release`:

    .venv/bin/python benches/http_roundtrip.py [path/to/runcomfy-mcp]
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import httpx2 as httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from cargo_target import binary  # noqa: E402 (after the path it is found on)

BIN = sys.argv[1] if len(sys.argv) > 1 else binary("release")
N = 300
INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
ACCEPT = {"accept": "application/json, text/event-stream"}


def start(*flags):
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"}
    proc = subprocess.Popen([BIN, "serve", "--transport", "http", "--port", "0", "--simulate", *flags],
                            stdout=subprocess.PIPE, env=env, text=True)
    return proc, proc.stdout.readline().strip().removesuffix("/mcp")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def timed(fn):
    samples = []
    for i in range(N):
        t = time.perf_counter()
        fn(i + 1)
        samples.append((time.perf_counter() - t) * 1000)
    return f"median {statistics.median(samples):.2f} ms, p95 {sorted(samples)[int(N * .95)]:.2f} ms"


def streamable(url, stateless):
    with httpx.Client(headers=ACCEPT) as http:
        r = http.post(f"{url}/mcp", json=INIT)
        headers = {}
        if not stateless:
            headers["mcp-session-id"] = r.headers["mcp-session-id"]
            http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        headers["mcp-protocol-version"] = "2025-06-18"

        def ping(i):
            r = http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": i, "method": "ping"}, headers=headers)
            assert r.status_code == 200 and f'"id":{i}' in r.text, r.text
        return timed(ping)


def legacy(url):
    with httpx.Client() as http, http.stream("GET", f"{url}/sse") as stream:
        lines = stream.iter_lines()
        endpoint = next(l for l in lines if l.startswith("data:"))[5:].strip()

        def roundtrip(message):
            assert http.post(f"{url}{endpoint}", json=message).status_code == 202
            if "id" in message:
                while True:
                    line = next(lines)
                    if line.startswith("data:") and json.loads(line[5:])["id"] == message["id"]:
                        return
        roundtrip(INIT)
        roundtrip({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return timed(lambda i: roundtrip({"jsonrpc": "2.0", "id": i, "method": "ping"}))


def many_sessions(url, pid, n=100):
    """n Streamable HTTP sessions plus n legacy SSE streams held open at once."""
    stop = threading.Event()
    with httpx.Client(headers=ACCEPT) as http:
        for _ in range(n):
            http.post(f"{url}/mcp", json=INIT)
    ready = threading.Semaphore(0)

    def hold():
        with httpx.Client() as http, http.stream("GET", f"{url}/sse") as s:
            next(s.iter_lines())
            ready.release()
            stop.wait()
    threads = [threading.Thread(target=hold, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        ready.acquire()
    time.sleep(0.5)
    kib = rss_kib(pid)
    stop.set()
    return kib


for label, flags in [("sessions", ()), ("stateless", ("--stateless",))]:
    proc, url = start(*flags)
    time.sleep(0.3)
    idle = rss_kib(proc.pid)
    print(f"streamable HTTP ({label}): ping round trip {streamable(url, label == 'stateless')}; idle RSS {idle / 1024:.1f} MiB")
    if label == "sessions":
        print(f"legacy SSE: ping round trip {legacy(url)}")
        kib = many_sessions(url, proc.pid, 50)
        print(f"RSS with 50 Streamable HTTP sessions + 50 legacy SSE streams open: {kib / 1024:.1f} MiB")
    t = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    print(f"SIGTERM to exit ({label}, nothing in flight): {(time.perf_counter() - t) * 1000:.0f} ms, exit {code}")
