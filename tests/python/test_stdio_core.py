"""The core tool flow driven by the official Python MCP client over stdio."""

import time

import pytest
from conftest import eventually
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.anyio

TOOLS = {
    "generate_image",
    "generate_image_and_wait",
    "generate_variations",
    "check_status",
    "get_result",
    "cancel_request",
    "list_jobs",
    "list_models",
    "describe_model",
    "run_model",
}


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def run_flow(call):
    submitted = await call("generate_image", {"prompt": "a red fox in snow", "size": "1024x1024", "force_single": True})
    assert not submitted.is_error, text_of(submitted)
    request_id = submitted.structured_content["request_id"]
    assert submitted.structured_content["size"] == "1024x1024(1:1)"

    statuses = []

    async def finished():
        state = await call("check_status", {"request_id": request_id})
        assert not state.is_error, text_of(state)
        statuses.append(state.structured_content["status"])
        return state.structured_content["finished"]

    await eventually(finished, "the job to finish", interval=0.1)
    assert statuses[0] in ("in_queue", "in_progress") and statuses[-1] == "succeeded", statuses

    result = await call("get_result", {"request_id": request_id})
    assert not result.is_error, text_of(result)
    images = result.structured_content["images"]
    assert len(images) == 1 and images[0].startswith("http://127.0.0.1:"), images
    assert images[0] in text_of(result)

    unknown = await call("cancel_request", {"request_id": "00000000-0000-4000-8000-000000000000"})
    assert unknown.is_error and "no such request" in text_of(unknown)

    bad = await call("generate_image", {"prompt": "x" * 801})
    assert bad.is_error and "`prompt`" in text_of(bad)


async def test_core_flow_with_client_session(server_params):
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            assert {t.name for t in tools.tools} == TOOLS
            await run_flow(session.call_tool)


async def test_high_level_client_in_auto_mode_connects_at_once(server_params):
    started = time.monotonic()
    async with Client(server_params, mode="auto") as client:
        connected = time.monotonic() - started
        print(f"Client(mode='auto') connected in {connected * 1000:.0f} ms")
        # A server that ignored server/discover would stall this for 10 s; this bound only
        # tells a stall from a prompt answer, it is not a speed target.
        assert connected < 5, f"connect took {connected:.1f} s: server/discover was not answered promptly"
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        await run_flow(client.call_tool)
