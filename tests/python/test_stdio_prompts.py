"""The MCP prompts through the official Python client: listed with their arguments, and each one
written out with the arguments a person gave, over the initialize handshake and on 2026-07-28."""

import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

PROMPTS = {"exact_text", "consistent_set", "keep_identity_edit", "product_shot"}


async def check_prompts(list_prompts, get_prompt):
    listed = await list_prompts()
    assert {p.name for p in listed.prompts} == PROMPTS
    by_name = {p.name: p for p in listed.prompts}
    required = {a.name for a in by_name["keep_identity_edit"].arguments if a.required}
    assert required == {"image", "change"}, required

    text = await get_prompt("exact_text", {"text": "GRAND OPENING", "design": "a poster"})
    message = text.messages[0]
    assert message.role == "user"
    assert '"GRAND OPENING"' in message.content.text and "generate_image_and_wait" in message.content.text

    made = await get_prompt("consistent_set", {"subject": "a red panda", "count": "6"})
    body = made.messages[0].content.text
    assert "a set of 6 images of a red panda" in body and "force_single false" in body, body

    with pytest.raises(MCPError) as refused:
        await get_prompt("consistent_set", {"subject": "a red panda", "count": "40"})
    assert "2 to 15" in str(refused.value)


async def test_prompts_with_client_session(server_params):
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.capabilities.prompts is not None
            await check_prompts(session.list_prompts, session.get_prompt)


async def test_prompts_with_the_high_level_client(server_params):
    async with Client(server_params, mode="auto") as client:
        await check_prompts(client.list_prompts, client.get_prompt)
