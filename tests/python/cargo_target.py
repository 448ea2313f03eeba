"""Where cargo put the built server, for the tests here and the benches: one place."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def target_dir():
    """cargo's target directory: $CARGO_TARGET_DIR when set (relative to the working directory,
    as cargo reads it), else the repository's target/."""
    chosen = os.environ.get("CARGO_TARGET_DIR")
    return pathlib.Path(chosen).resolve() if chosen else ROOT / "target"


def binary(profile="debug"):
    """The runcomfy-mcp binary of `profile`: $RUNCOMFY_MCP_BIN when set, else cargo's."""
    return os.environ.get("RUNCOMFY_MCP_BIN") or str(target_dir() / profile / "runcomfy-mcp")
