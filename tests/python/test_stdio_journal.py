"""list_jobs through the official Python client: a request id lost with one session is found again
in the next, and completed from there."""

import pytest
from conftest import eventually
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.anyio


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def test_list_jobs_recovers_a_lost_request_id_in_a_new_session(server_on):
    # Session 1 submits, then goes away (a closed conversation, a restarted client).
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            submitted = await session.call_tool("generate_image", {"prompt": "a heron on one leg", "size": "1024x1024"})
            assert not submitted.is_error, text_of(submitted)
            request_id = submitted.structured_content["request_id"]

    # Session 2, a new server process on the same machine, has only the journal to go on.
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            listing = tools["list_jobs"]
            assert listing.annotations.read_only_hint is True
            assert set(listing.input_schema["properties"]) == {"status", "limit"}
            assert "jobs" in listing.output_schema["properties"]

            listed = await session.call_tool("list_jobs", {})
            assert not listed.is_error, text_of(listed)
            jobs = listed.structured_content["jobs"]
            assert [j["request_id"] for j in jobs] == [request_id]
            assert jobs[0]["prompt"] == "a heron on one leg"
            assert jobs[0]["size"] == "1024x1024(1:1)"
            assert request_id in text_of(listed)

            async def finished():
                result = await session.call_tool("get_result", {"request_id": request_id})
                assert not result.is_error, text_of(result)
                return result if result.structured_content["finished"] else None

            result = await eventually(finished, "get_result to see the job finished", interval=0.1)
            images = result.structured_content["images"]
            assert result.structured_content["status"] == "succeeded" and images

            done = await session.call_tool("list_jobs", {"status": "succeeded", "limit": 5})
            assert done.structured_content["jobs"][0]["images"] == images
            assert images[0] in text_of(done)
            none_queued = await session.call_tool("list_jobs", {"status": "in_queue"})
            assert none_queued.structured_content["jobs"] == []

            bad = await session.call_tool("list_jobs", {"limit": 1000})
            assert bad.is_error and "`limit`" in text_of(bad)
