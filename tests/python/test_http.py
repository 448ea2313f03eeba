"""The official Python client over HTTP: Streamable HTTP (with and without sessions) and the legacy
HTTP+SSE transport, the full tool flow, progress and cancellation, and the high-level Client in
auto mode. The server is the real binary (`serve --transport http --port 0`), pointed at a
standalone simulator, and is stopped with SIGTERM at the end of each test: it must exit cleanly."""

import signal
import subprocess
from contextlib import asynccontextmanager

import anyio
import httpx2 as httpx
import pytest
from conftest import BIN, env_for
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from test_stdio_core import TOOLS, run_flow, text_of
from test_stdio_waiting import cancel_a_waiting_call, set_sim

pytestmark = pytest.mark.anyio

AUTH_TOKEN = "py-http-test-token-7c1d2e9f"
AUTH = {"Authorization": f"Bearer {AUTH_TOKEN}"}


@pytest.fixture
def start_server(simulator):
    """Starts `serve --transport http` on a free port; returns its base URL. Every server started
    is sent SIGTERM at teardown and must exit with status 0 (graceful shutdown)."""
    procs = []

    def start(*flags, token=AUTH_TOKEN):
        env = env_for(simulator, RUNCOMFY_NO_JOURNAL="true")
        if token:
            env["RUNCOMFY_MCP_AUTH_TOKEN"] = token
        cmd = [BIN, "serve", "--transport", "http", "--port", "0", "--shutdown-grace-secs", "5", *flags]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
        procs.append(proc)
        printed = proc.stdout.readline().strip()
        # The endpoint a client is given; the tests here build every path on the base.
        assert printed.startswith("http://127.0.0.1:") and printed.endswith("/mcp"), f"server printed {printed!r}"
        return printed.removesuffix("/mcp")

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, "the server did not shut down cleanly on SIGTERM"


@pytest.fixture(autouse=True)
def sessions_close_cleanly(caplog):
    """The client ends each Streamable HTTP session with DELETE and logs a warning unless the
    answer is 200 or 204 (the server once answered 202: one warning per session)."""
    yield
    failed = [r.getMessage() for r in caplog.get_records("call") if "Session termination failed" in r.getMessage()]
    assert not failed, failed


@asynccontextmanager
async def streamable_session(url):
    async with httpx.AsyncClient(headers=AUTH, timeout=httpx.Timeout(30, read=60)) as http:
        async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def sse_session(url):
    async with sse_client(f"{url}/sse", headers=AUTH) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


SESSIONS = {
    "streamable-http": (streamable_session, ()),
    "streamable-http-stateless": (streamable_session, ("--stateless",)),
    "legacy-sse": (sse_session, ()),
}


@pytest.mark.parametrize("transport", SESSIONS)
async def test_full_tool_flow(start_server, transport):
    open_session, flags = SESSIONS[transport]
    async with open_session(start_server(*flags)) as session:
        tools = await session.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        await run_flow(session.call_tool)


@pytest.mark.parametrize("transport", SESSIONS)
async def test_progress_reaches_the_client(simulator, start_server, transport):
    await set_sim(simulator, initial_queue_position=2, queue_step_ms=300, run_ms=500)
    open_session, flags = SESSIONS[transport]
    updates = []

    async def on_progress(progress, total, message):
        updates.append((progress, message))

    async with open_session(start_server(*flags)) as session:
        result = await session.call_tool(
            "generate_image_and_wait", {"prompt": "a heron over HTTP"}, progress_callback=on_progress
        )
    assert not result.is_error, text_of(result)
    assert result.structured_content["status"] == "succeeded"
    values = [p for p, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values), updates
    messages = " | ".join(m for _, m in updates)
    for phase in ("Submitted", "Queued at position", "Generating", "Finished"):
        assert phase in messages, messages


# Stateless Streamable HTTP is left out: a `notifications/cancelled` POST cannot reach a call
# served by another request (rmcp; REFERENCE.md §3).
@pytest.mark.parametrize("transport", ["streamable-http", "legacy-sse"])
async def test_cancelling_the_call_cancels_the_queued_job(simulator, start_server, transport):
    await set_sim(simulator, initial_queue_position=100, queue_step_ms=1000)
    open_session, flags = SESSIONS[transport]
    async with open_session(start_server(*flags)) as session:
        await cancel_a_waiting_call(session, simulator)


async def test_high_level_client_in_auto_mode_over_streamable_http(start_server):
    url = start_server(token=None)
    async with Client(f"{url}/mcp", mode="auto") as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        await run_flow(client.call_tool)


async def test_high_level_client_in_auto_mode_over_legacy_sse(start_server):
    url = start_server()
    async with Client(sse_client(f"{url}/sse", headers=AUTH), mode="auto") as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        await run_flow(client.call_tool)


async def test_the_python_client_is_refused_without_the_token(start_server):
    url = start_server()
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.text


async def test_the_printed_address_is_the_endpoint_and_the_bare_one_says_where_it_is(start_server):
    """`serve --transport http` prints the MCP endpoint (start_server checks the `/mcp`), and the
    bare address answers a short page naming it instead of an empty 404."""
    base = start_server()
    async with httpx.AsyncClient(headers=AUTH) as http:
        page = await http.get(f"{base}/")
    assert page.status_code == 200, page
    assert f"{base}/mcp" in page.text and page.headers["content-type"].startswith("text/plain"), page.text
