"""Shared fixtures for the Python-client tests: the built binary, run on its in-process simulator."""

import os
import pathlib

import pytest
from mcp import StdioServerParameters

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("RUNCOMFY_MCP_BIN", str(ROOT / "target" / "debug" / "runcomfy-mcp"))


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def server_params():
    """`serve --simulate`: the offline product path, no token and no network."""
    assert os.path.exists(BIN), f"{BIN} is missing: run `cargo build` first (scripts/test does)"
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"}
    return StdioServerParameters(command=BIN, args=["serve", "--simulate"], env=env)
