"""A person approves a big spend (--confirm-above-usd), through the official Python client's
elicitation_callback: on the initialize handshake (an elicitation/create request to the client)
and on 2026-07-28 (an input-required result the client answers by calling again). Accept starts
the job; decline and cancel start none; a client that cannot ask is refused, told which setting;
a call within the threshold is not asked about. The simulator's job list is what was submitted."""

import httpx2 as httpx
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from conftest import BIN, env_for

pytestmark = pytest.mark.anyio

# A Dreamina job makes a set of up to 15 images at the simulator's $0.03: up to $0.45.
BIG = {"prompt": "a red fox in snow", "size": "1024x1024"}
QUESTION = (
    'This will cost up to $0.45 (15 images at $0.03 each): 1 job on bytedance/dreamina-4-0/text-to-image, '
    '"a red fox in snow". Start it?'
)


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def submitted(simulator):
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{simulator}/__sim/jobs")
        response.raise_for_status()
        return response.json()


@pytest.fixture
def confirming(simulator, state_dir):
    """The server against the standalone simulator, asking above $0.10."""
    env = env_for(simulator, RUNCOMFY_STATE_DIR=state_dir, RUNCOMFY_CONFIRM_ABOVE_USD="0.10")
    return StdioServerParameters(command=BIN, args=["serve"], env=env)


def answering(action, asked):
    async def callback(context, params):
        asked.append(params.message)
        return types.ElicitResult(action=action, content={} if action == "accept" else None)

    return callback


def check_answer(result, action):
    text = text_of(result)
    if action == "accept":
        assert not result.is_error, text
        assert result.structured_content["request_id"], result.structured_content
    else:
        assert result.is_error, text
        said = {"decline": "the person declined", "cancel": "dismissed the question"}[action]
        assert said in text and "Nothing was sent to RunComfy" in text, text


@pytest.mark.parametrize("action,jobs", [("accept", 1), ("decline", 0), ("cancel", 0)])
async def test_the_person_is_asked_on_the_handshake_protocol(confirming, simulator, action, jobs):
    asked = []
    async with stdio_client(confirming) as (read, write):
        async with ClientSession(read, write, elicitation_callback=answering(action, asked)) as session:
            await session.initialize()
            result = await session.call_tool("generate_image", BIG)
    assert asked == [QUESTION]
    check_answer(result, action)
    assert len(await submitted(simulator)) == jobs


@pytest.mark.parametrize("action,jobs", [("accept", 1), ("decline", 0), ("cancel", 0)])
async def test_the_person_is_asked_on_2026_07_28(confirming, simulator, action, jobs):
    asked = []
    async with Client(confirming, mode="2026-07-28", elicitation_callback=answering(action, asked)) as client:
        result = await client.call_tool("generate_image", BIG)
    assert asked == [QUESTION]
    check_answer(result, action)
    assert len(await submitted(simulator)) == jobs


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_client_that_cannot_ask_is_refused_naming_the_setting(confirming, simulator, mode):
    async with Client(confirming, mode=mode) as client:
        result = await client.call_tool("generate_image", BIG)
        text = text_of(result)
        assert result.is_error and "--confirm-above-usd" in text and "up to $0.45" in text, text
        assert "cannot ask them" in text and "force_single: true" in text, text
        assert await submitted(simulator) == []
        # Within the threshold nothing is asked: one image at $0.03.
        small = await client.call_tool("generate_image", {**BIG, "force_single": True})
        assert not small.is_error, text_of(small)
    assert len(await submitted(simulator)) == 1


async def test_run_model_is_asked_about_too(confirming, simulator):
    asked = []
    arguments = {"model_id": "bytedance/dreamina-4-0/text-to-image", "input": {"prompt": "a red fox in snow"}, "wait": False}
    async with stdio_client(confirming) as (read, write):
        async with ClientSession(read, write, elicitation_callback=answering("decline", asked)) as session:
            await session.initialize()
            declined = await session.call_tool("run_model", arguments)
    assert len(asked) == 1 and asked[0].startswith("This will cost up to $0.45"), asked
    check_answer(declined, "decline")
    assert await submitted(simulator) == []


async def test_variations_are_asked_about_too(confirming, simulator):
    asked = []
    async with stdio_client(confirming) as (read, write):
        async with ClientSession(read, write, elicitation_callback=answering("decline", asked)) as session:
            await session.initialize()
            # One image at $0.03: within the threshold, not asked about.
            parent = await session.call_tool("generate_image", {**BIG, "force_single": True})
            assert not parent.is_error, text_of(parent)
            # Four variations of it: up to $0.12.
            arguments = {"request_id": parent.structured_content["request_id"], "count": 4}
            declined = await session.call_tool("generate_variations", arguments)
    assert len(asked) == 1 and asked[0].startswith("This will cost up to $0.12 (4 images at $0.03 each)"), asked
    check_answer(declined, "decline")
    assert len(await submitted(simulator)) == 1
