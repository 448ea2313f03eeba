"""`serve` started by a person in a terminal says, in one line on stderr, what it is and how to
use it; started by a client (pipes), it says nothing of the kind."""

import os
import pty
import subprocess

import pytest
from conftest import BIN, server_env

HINT = "speaks MCP over stdio"


def serve(state_dir, stdin, *flags):
    # Without --simulate a key is needed to start; the upstream is a closed loopback port (nothing
    # is called before Ctrl-D anyway).
    upstream = {} if "--simulate" in flags or not flags else {
        "RUNCOMFY_API_KEY": "python-test-token", "RUNCOMFY_BASE_URL": "http://127.0.0.1:9"
    }
    return subprocess.Popen(
        [BIN, "serve", *(flags or ("--simulate",))],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(RUNCOMFY_STATE_DIR=state_dir, **upstream),
    )


# The command to attach a client with is the one that was typed: with --simulate, it says so.
@pytest.mark.parametrize(
    "flags, command",
    [(("--simulate",), "`runcomfy-mcp serve --simulate`"), (("--no-journal",), "`runcomfy-mcp serve`")],
)
def test_a_terminal_gets_one_line_on_attaching_a_client_and_trying_it_from_the_shell(state_dir, flags, command):
    terminal, stdin = pty.openpty()
    proc = serve(state_dir, stdin, *flags)
    os.close(stdin)
    try:
        # Ctrl-D, as the person would type it: the end of input, and the server ends.
        os.write(terminal, b"\x04")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        os.close(terminal)
    hints = [line for line in err.decode().splitlines() if HINT in line]
    assert len(hints) == 1, err.decode()[-2000:]
    assert command in hints[0] and "generate --simulate" in hints[0], hints[0]
    assert out == b"", "stdout is JSON-RPC's alone, even in a terminal"
    assert proc.returncode == 0


def test_a_client_on_pipes_gets_no_such_line(state_dir):
    proc = serve(state_dir, subprocess.PIPE)
    out, err = proc.communicate(b"", timeout=30)
    assert HINT not in err.decode()
    assert out == b"" and proc.returncode == 0
