"""Writes `link/runcomfy-mcp.order`, the linker's symbol-ordering file (see `build.rs`): the
functions the server runs from exec to an idle `initialize`d session first, then those a tool
call over stdio and over Streamable HTTP adds. Not a test; a maintenance step, run after
`cargo update`, a toolchain upgrade or a large change to the start-up path (a stale file costs
RSS, never a build: names the binary no longer has are skipped; the bench's idle RSS target
shows it):

    export RUSTFLAGS="-C strip=none" CARGO_TARGET_DIR=target-sym
    cargo build --release --bin runcomfy-mcp && cp target-sym/release/runcomfy-mcp target-sym/shipped
    cargo bench --no-run --bench server
    python3 benches/link_order.py target-sym/shipped target-sym/release/runcomfy-mcp

The symbols must be those of the shipped build. A legacy-mangled Rust symbol ends in a hash of its
crate's `-C metadata`, which cargo derives from the dependency graph, the toolchain and the
profile (so `CARGO_PROFILE_RELEASE_STRIP=none` gives every symbol another name) but not from
RUSTFLAGS: a later `-C strip=none` keeps the names and the symbols. Two builds, because `cargo
bench` builds the server with the dev-dependencies' features turned on in shared crates, which
gives those crates, and every crate above them, other metadata: the list holds the names of both.

Why: the kernel maps a binary's code 64 KB around every page touched (fault-around), so a start
that touches functions spread over the whole text section keeps most of it in the process's RSS.
Laid out together, the code a start runs fills a few hundred pages instead. The names come from
callgrind (every function that ran, mangled as in the symbol table); their order within a group
does not matter.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind  # noqa: E402  (the simulator, sessions and drivers of the instruction counts)

SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.$]*$")
ORDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "link", "runcomfy-mcp.order")


def ran(out, binary):
    """The mangled names of the functions of `binary` that ran, from a callgrind file written with
    --compress-strings=no (every name in full on every line)."""
    names = set()
    ob = cob = None
    with open(out) as f:
        for line in f:
            if line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("cob="):
                cob = line[4:].strip()
            elif line.startswith("fn=") or line.startswith("cfn="):
                called = line.startswith("cfn=")
                obj = (cob or ob) if called else ob
                if called:
                    cob = None
                # callgrind marks recursion levels with 'N; the symbol has no such suffix.
                name = re.sub(r"'\d+$", "", line.split("=", 1)[1].strip())
                # Code without a symbol shows as an address, the entry point as "(below main)".
                if obj and os.path.realpath(obj) == binary and SYMBOL.match(name):
                    names.add(name)
    return names


def idle_run(calls, out, upstream, state, flags):
    """Start, `initialize`, and idle long enough for the start's background work (the journal's
    opening, the tool schemas) to finish: what the idle RSS is made of."""
    proc = subprocess.Popen(callgrind.server_command(out, flags, "stdio"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=callgrind.server_env(upstream, state), text=True)
    proc.stdin.write('{"jsonrpc":"2.0","id":1,"method":"initialize","params":%s}\n' % json.dumps(callgrind.INIT))
    proc.stdin.flush()
    proc.stdout.readline()
    proc.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    proc.stdin.flush()
    time.sleep(3)  # under valgrind, the background threads take a while
    proc.stdin.close()
    proc.wait(timeout=120)


def main():
    binaries = [os.path.realpath(b) for b in sys.argv[1:]]
    if not binaries:
        raise SystemExit(__doc__)
    callgrind.COUNTERS["callgrind"] = lambda out: [
        "valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no", "--compress-pos=no",
        f"--callgrind-out-file={out}"]
    runs = [
        ("idle", idle_run, []),
        ("stdio", callgrind.stdio_run, []),
        ("http", callgrind.http_run, []),
        ("stateless", callgrind.http_run, ["--stateless"]),
    ]
    found = {name: set() for name, _, _ in runs}
    for binary in binaries:
        callgrind.BIN = binary
        sim, upstream = callgrind.simulator()
        try:
            with tempfile.TemporaryDirectory() as outdir:
                for name, run, flags in runs:
                    out = os.path.join(outdir, name)
                    with tempfile.TemporaryDirectory() as state:
                        run(3, out, upstream, state, flags)
                    found[name] |= ran(out, binary)
        finally:
            sim.terminate()
    seen, lines = set(), []
    for name, _, _ in runs:
        new = sorted(found[name] - seen)
        seen |= found[name]
        lines += new
        print(f"{name}: {len(new)} functions more", file=sys.stderr)
    os.makedirs(os.path.dirname(ORDER), exist_ok=True)
    with open(ORDER, "w") as f:
        f.write("".join(n + "\n" for n in lines))
    print(f"wrote {len(lines)} names to {os.path.relpath(ORDER)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
