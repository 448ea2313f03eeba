"""Shared fixtures for the Python-client tests: the built binary, run on its in-process simulator.

Every process a test starts gets an environment built here (`server_env`), never the shell's: no
RUNCOMFY_* variable of the developer's leaks in, and RUST_LOG passes through (warn when unset),
so the secret scan's trace run logs every server. Waiting for something is `eventually`."""

import os
import subprocess

import anyio
import pytest
from mcp import StdioServerParameters

from cargo_target import binary

BIN = binary()


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def state_dir(tmp_path):
    """The job journal's directory: a fresh one per test, never the real home."""
    return str(tmp_path / "state")


def server_env(**extra):
    """The environment of every process a test starts: PATH and RUST_LOG only, plus `extra`."""
    return {"PATH": os.environ.get("PATH", ""), "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **extra}


async def eventually(check, what, timeout=30, interval=0.05):
    """Awaits `check()` every `interval` seconds until it returns something truthy, and returns
    that; fails after `timeout` seconds saying what never happened and what `check` last returned."""
    last = None
    with anyio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await anyio.sleep(interval)
    pytest.fail(f"gave up after {timeout} s waiting for {what}; last saw: {last!r}")


@pytest.fixture
def server_params(state_dir):
    """`serve --simulate`: the offline product path, no token and no network."""
    assert os.path.exists(BIN), f"{BIN} is missing: run `cargo build` first (scripts/test does)"
    return StdioServerParameters(command=BIN, args=["serve", "--simulate"], env=server_env(RUNCOMFY_STATE_DIR=state_dir))


@pytest.fixture
def simulator():
    """A standalone simulator (`runcomfy-mcp simulate --port 0`); yields its base URL.

    Tests change its timings per job through its control API (`PUT /__sim/config`)."""
    proc = subprocess.Popen(
        [BIN, "simulate", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(), text=True
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"simulator printed {url!r}"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def env_for(simulator, **extra):
    """The environment of a server pointed at the standalone simulator, polling fast."""
    return server_env(
        RUNCOMFY_API_KEY="python-test-token",
        RUNCOMFY_BASE_URL=simulator,
        RUNCOMFY_POLL_FIRST_MS="50",
        RUNCOMFY_POLL_MAX_MS="200",
        **extra,
    )


@pytest.fixture
def server_on(simulator, state_dir):
    """Server parameters for the binary pointed at the standalone simulator, polling fast."""
    return StdioServerParameters(command=BIN, args=["serve"], env=env_for(simulator, RUNCOMFY_STATE_DIR=state_dir))
