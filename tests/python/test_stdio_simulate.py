"""`serve --simulate` as a person first tries it: each picture shows what was asked (two prompts,
two pictures), the jobs outlive a restart on the same state directory (list_jobs, get_result
and `request_id#1` references agree again), and the Claude Desktop bundle can be tried without a
key."""

import base64
import zlib

import httpx2 as httpx
import pytest
from conftest import BIN, env_for, server_env
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.anyio


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def pixels(png):
    """An indexed PNG's pixels as RGB triples (the simulator writes 8-bit indexed rows filtered
    with None or Sub)."""
    chunks, pos = {}, 8
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width = int.from_bytes(chunks[b"IHDR"][0:4], "big")
    assert chunks[b"IHDR"][8:10] == bytes([8, 3]), "8-bit indexed"
    palette, data = chunks[b"PLTE"], zlib.decompress(chunks[b"IDAT"])
    out = []
    for start in range(0, len(data), width + 1):
        kind, row = data[start], bytearray(data[start + 1 : start + 1 + width])
        assert kind in (0, 1), f"filter {kind}"
        for x in range(1 if kind == 1 else width, width):
            row[x] = (row[x] + row[x - 1]) & 0xFF
        out.extend(palette[3 * i : 3 * i + 3] for i in row)
    return out


def inline_image(result):
    """The inline preview's bytes (a JPEG)."""
    images = [c for c in result.content if getattr(c, "type", None) == "image"]
    assert images, text_of(result)
    return base64.b64decode(images[0].data)


async def result_png(result):
    """The result file itself, from the simulator's URL."""
    async with httpx.AsyncClient() as http:
        answer = await http.get(result.structured_content["images"][0])
    assert answer.status_code == 200, answer
    return answer.content


async def made(session, prompt):
    result = await session.call_tool(
        "generate_image_and_wait", {"prompt": prompt, "size": "1024x1024", "force_single": True}
    )
    assert not result.is_error, text_of(result)
    return result


async def test_two_prompts_give_visibly_different_pictures(server_params):
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            fox = await result_png(await made(session, "a red fox in the snow"))
            lighthouse = await result_png(await made(session, "a lighthouse at dusk"))
    assert fox.startswith(b"\x89PNG") and lighthouse.startswith(b"\x89PNG")
    a, b = pixels(fox), pixels(lighthouse)
    assert len(a) == len(b)
    differing = sum(1 for x, y in zip(a, b) if x != y)
    assert differing > len(a) // 10, f"only {differing} of {len(a)} pixels differ"


async def test_a_job_survives_a_restart_of_serve_simulate_on_the_same_state_directory(server_params):
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            first = await made(session, "a heron on one leg")
            request_id = first.structured_content["request_id"]
            before = inline_image(first)

    # A new process on the same state directory: a new simulator, on another port.
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.call_tool("list_jobs", {})
            assert request_id in [j["request_id"] for j in listed.structured_content["jobs"]], text_of(listed)
            again = await session.call_tool("get_result", {"request_id": request_id})
            assert not again.is_error, text_of(again)
            assert again.structured_content["status"] == "succeeded", text_of(again)
            assert inline_image(again) == before, "the same picture as before the restart"
            # Its reference still names its image: an edit of it is drawn from it.
            edit = await session.call_tool(
                "generate_image_and_wait", {"prompt": "make it night", "images": [f"{request_id}#1"]}
            )
            assert not edit.is_error, text_of(edit)
            assert edit.structured_content["status"] == "succeeded", text_of(edit)


async def test_without_a_key_the_bundle_runs_on_the_simulator_and_with_one_on_runcomfy(simulator, state_dir):
    """The Claude Desktop bundle sets RUNCOMFY_SIMULATE_WITHOUT_KEY and passes the key field as
    it was filled in: empty, the built-in simulator answers; set, the configured upstream (here a
    standalone simulator standing in for RunComfy) gets the job."""
    async def submit(env):
        params = StdioServerParameters(command=BIN, args=["serve"], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                submitted = await session.call_tool("generate_image", {"prompt": "a kite", "size": "1024x1024"})
                assert not submitted.is_error, text_of(submitted)
                return submitted.structured_content["request_id"]

    async def upstream_jobs():
        async with httpx.AsyncClient() as http:
            return [j["request_id"] for j in (await http.get(f"{simulator}/__sim/jobs")).json()]

    bundle = {"RUNCOMFY_SIMULATE_WITHOUT_KEY": "true", "RUNCOMFY_STATE_DIR": state_dir}
    offline = await submit(server_env(RUNCOMFY_API_KEY="", RUNCOMFY_BASE_URL=simulator, **bundle))
    assert offline not in await upstream_jobs(), "no key: nothing reached the upstream"
    online = await submit(env_for(simulator, **bundle))
    assert online in await upstream_jobs(), "a key: the job went to the upstream"
