"""The model catalogue through the official Python client: list and search, describe with a
provider-safe schema, an unknown id answered with the closest ids, and the catalogue served from
the copy in the state directory once the simulator is gone."""

import re
import subprocess

import httpx2 as httpx
import pytest
from conftest import BIN, env_for, server_env
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from test_stdio_core import text_of

pytestmark = pytest.mark.anyio

SAFE_KEY = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


async def call(params, name, arguments):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool(name, arguments)


async def test_list_search_and_describe(server_params):
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.call_tool("list_models", {})
            assert not listed.is_error, text_of(listed)
            ids = {m["model_id"] for m in listed.structured_content["models"]}
            assert listed.structured_content["total"] == len(ids) == 8, ids
            kinds = {m.get("kind") for m in listed.structured_content["models"]}
            assert {"image", "video", "audio"} <= kinds, kinds
            video = next(m for m in listed.structured_content["models"] if m.get("kind") == "video")
            assert video["price"].endswith("per second"), video
            assert video["model_id"] in text_of(listed)

            found = await session.call_tool("list_models", {"search": "seedream 4.0 edit"})
            assert [m["model_id"] for m in found.structured_content["models"]] == ["bytedance/seedream-4-0/edit"]
            paged = await session.call_tool("list_models", {"kind": "image", "limit": 2})
            assert len(paged.structured_content["models"]) == 2 and paged.structured_content["total"] == 6
            assert "offset 2" in paged.structured_content["next_step"]

            described = await session.call_tool("describe_model", {"model_id": "bytedance/dreamina-4-0/text-to-image"})
            assert not described.is_error, text_of(described)
            schema = described.structured_content["input_schema"]
            keys = set(schema["properties"])
            assert all(SAFE_KEY.match(k) for k in keys), keys
            assert "width_x_height" in keys and "prompt" in keys
            assert described.structured_content["renamed_keys"] == [
                {"key": "width_x_height", "runcomfy_key": "width\u00d7height"}
            ]
            for banned in ("$ref", "$defs", "$schema"):
                assert banned not in str(schema)

            rules = await session.call_tool("describe_model", {"model_id": "bytedance/seedream-5.0-pro/image-to-image"})
            image = rules.structured_content["input_schema"]["properties"]["image"]
            assert "validations" not in image and "File size must be less than 30 MB." in image["description"]

            unknown = await session.call_tool("describe_model", {"model_id": "bytedance/seedrem-4-0/edit"})
            assert unknown.is_error
            assert "bytedance/seedream-4-0/edit" in text_of(unknown), text_of(unknown)


async def test_the_catalogue_is_served_from_its_copy_when_runcomfy_is_gone(tmp_path):
    state = str(tmp_path / "state")
    sim = subprocess.Popen(
        [BIN, "simulate", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=server_env()
    )
    try:
        url = sim.stdout.readline().strip()
        params = StdioServerParameters(command=BIN, args=["serve"], env=env_for(url, RUNCOMFY_STATE_DIR=state))
        first = await call(params, "list_models", {"search": "video"})
        assert not first.is_error, text_of(first)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    # A new server, the simulator stopped: the copy in the state directory answers.
    again = await call(params, "list_models", {"search": "video"})
    assert not again.is_error, text_of(again)
    assert again.structured_content["models"] == first.structured_content["models"]
    described = await call(params, "describe_model", {"model_id": "minimax/speech-2.6/text-to-audio"})
    assert not described.is_error and described.structured_content["kind"] == "audio"
    # Without a copy, the answer says neither could tell.
    empty = StdioServerParameters(
        command=BIN, args=["serve"], env=env_for(url, RUNCOMFY_STATE_DIR=str(tmp_path / "other"))
    )
    nothing = await call(empty, "list_models", {})
    assert nothing.is_error and "no copy of it on this machine" in text_of(nothing), text_of(nothing)


async def test_run_an_image_model_and_the_video_model_end_to_end(simulator, tmp_path):
    """run_model through the official client: an image model and the per-second video model with
    their files saved, an input the model's schema refuses (its own words, nothing submitted), and
    an unknown id answered with the closest ids."""
    out = tmp_path / "out"
    out.mkdir()
    params = StdioServerParameters(
        command=BIN,
        args=["serve"],
        env=env_for(simulator, RUNCOMFY_STATE_DIR=str(tmp_path / "state"), RUNCOMFY_OUTPUT_DIR=str(out)),
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            image = await session.call_tool(
                "run_model",
                {
                    "model_id": "google/nano-banana-2-lite/text-to-image",
                    "input": {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"},
                },
            )
            assert not image.is_error, text_of(image)
            done = image.structured_content
            assert done["status"] == "succeeded" and len(done["images"]) == 1, done
            saved = done["outputs"][0]["saved_path"]
            assert saved.startswith(str(out)) and open(saved, "rb").read(8) == b"\x89PNG\r\n\x1a\n", saved
            assert any(c.type == "image" for c in image.content), "an inline preview"

            video = await session.call_tool(
                "run_model",
                {
                    "model_id": "bytedance/seedance-2.5/text-to-video/1080p",
                    "input": {"prompt": "waves on a beach", "duration": 5},
                },
            )
            assert not video.is_error, text_of(video)
            done = video.structured_content
            assert done["status"] == "succeeded" and len(done["videos"]) == 1, done
            assert done["estimated_cost_usd"]["unit"] == "second"
            assert abs(done["cost_usd"] - 0.5) < 1e-9, done
            saved = done["outputs"][0]["saved_path"]
            assert saved.endswith(".mp4") and open(saved, "rb").read(8)[4:] == b"ftyp", saved

            jobs_before = len(await sim_jobs(simulator))
            refused = await session.call_tool(
                "run_model",
                {"model_id": "bytedance/seedance-2.5/text-to-video/1080p", "input": {"prompt": "x", "duration": 99}},
            )
            assert refused.is_error
            assert "input.duration: 99 is greater than the maximum of 30" in text_of(refused), text_of(refused)
            assert len(await sim_jobs(simulator)) == jobs_before, "nothing was submitted"

            unknown = await session.call_tool("run_model", {"model_id": "minimax/speech-2.6/text-to-audo", "input": {}})
            assert unknown.is_error and "minimax/speech-2.6/text-to-audio" in text_of(unknown), text_of(unknown)


async def sim_jobs(simulator):
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{simulator}/__sim/jobs")).json()
