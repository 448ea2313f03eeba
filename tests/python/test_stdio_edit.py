"""Editing, references and batches through the official Python client, against the simulator:
an edit of a local file, of an earlier result by request_id#n, of an https URL (passed through
unchanged); a batch of three with progress and a cancellation; and bad inputs refused before
anything is submitted. The simulator draws an edit from its first readable reference, tinted a
quarter of the way towards orange, so a pixel tells whether the reference reached the model."""

import json
import pathlib
import sqlite3
import struct
import zlib

import anyio
import httpx2 as httpx
import pytest
from mcp import StdioServerParameters
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from conftest import BIN, env_for

pytestmark = pytest.mark.anyio

BLUE = (0, 160, 255)


def tinted(rgb):
    return tuple((3 * c + t) // 4 for c, t in zip(rgb, (255, 128, 0)))


def png(rgb, width=16, height=16):
    """A solid-colour RGB PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def first_pixel(data):
    """The top-left pixel of an 8-bit RGB(A) or indexed PNG: enough of a decoder for a solid or
    tinted image, or the simulator's text-to-image gradient (whose colours are each job's own)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, channels, palette = 8, b"", 0, 3, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 3, 6), (depth, colour)
            channels = {2: 3, 3: 1, 6: 4}[colour]
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    row = zlib.decompressobj().decompress(idat, 1 + width * channels)
    # The first row has no row above it: Up and Paeth reduce to None and Sub, Average to half of Sub.
    kind, raw = row[0], bytearray(row[1:1 + channels])
    assert kind in (0, 1, 2, 3, 4), kind
    if palette is not None:
        return tuple(palette[3 * raw[0]:3 * raw[0] + 3])
    return tuple(raw[:3])


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def sim(simulator, method, path, **kwargs):
    async with httpx.AsyncClient() as http:
        response = await http.request(method, f"{simulator}{path}", **kwargs)
        response.raise_for_status()
        return response.json()


async def set_sim(simulator, **config):
    await sim(simulator, "PUT", "/__sim/config", json=config)


async def download(url):
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.content


def server_for(simulator, state_dir, *args, **env):
    return StdioServerParameters(command=BIN, args=["serve", *args], env=env_for(simulator, RUNCOMFY_STATE_DIR=state_dir, **env))


async def test_edit_of_a_local_file_is_drawn_from_it_and_journaled_without_its_bytes(simulator, state_dir, tmp_path):
    await set_sim(simulator, initial_queue_position=1, queue_step_ms=100, run_ms=100)
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "photo.png"
    photo.write_bytes(png(BLUE))
    async with stdio_client(server_for(simulator, state_dir, "--input-dir", str(photos))) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool(
                "generate_image_and_wait",
                {"prompt": "make it winter", "size": "1024x1024", "force_single": True, "images": [str(photo)]},
            )
    assert not result.is_error, text_of(result)
    done = result.structured_content
    request_id = done["request_id"]
    assert done["status"] == "succeeded" and done["request_ids"] == [request_id]
    output = done["outputs"][0]
    assert output["reference"] == f"{request_id}#1"
    assert done["made_with"] == {"prompt": "make it winter", "size": "1024x1024(1:1)", "scale": 0.5, "force_single": True, "images": [str(photo)]}
    assert f"reference {request_id}#1" in text_of(result) and "Made with: prompt" in text_of(result)
    # The simulator got the file as a data URI and drew the output from it.
    job = await sim(simulator, "GET", f"/__sim/jobs/{request_id}")
    assert job["request"]["image_urls"][0].startswith("data:image/png;base64,")
    assert job["inputs"] == [
        {"kind": "data_uri", "mime_type": "image/png", "bytes": photo.stat().st_size, "width": 16, "height": 16}
    ]
    assert first_pixel(await download(output["url"])) == tinted(BLUE)
    # The journal knows what the input was, never its bytes.
    with sqlite3.connect(pathlib.Path(state_dir) / "journal.sqlite3") as db:
        (model, params), = db.execute("SELECT model, params FROM jobs WHERE request_id = ?", (request_id,))
    assert model == "bytedance/dreamina-4-0/edit"
    # The recipe keeps the image field as given (the path), never the data URI that was sent.
    assert "base64" not in params and json.loads(params)["image_urls"] == [str(photo)]
    assert json.loads(params)["inputs"] == [
        {"kind": "file", "given": str(photo), "path": str(photo.resolve()), "bytes": photo.stat().st_size, "mime_type": "image/png"}
    ]


async def test_edit_of_an_earlier_result_by_its_reference(simulator, state_dir):
    await set_sim(simulator, initial_queue_position=1, queue_step_ms=100, run_ms=100, images_per_job=2)
    async with stdio_client(server_for(simulator, state_dir)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            first = await session.call_tool("generate_image_and_wait", {"prompt": "a lighthouse", "size": "1024x1024"})
            assert not first.is_error, text_of(first)
            first_id = first.structured_content["request_id"]
            second_url = first.structured_content["images"][1]
            assert [o["reference"] for o in first.structured_content["outputs"]] == [f"{first_id}#1", f"{first_id}#2"]

            # Through this machine's journal: no URL in the conversation.
            edit = await session.call_tool(
                "generate_image_and_wait", {"prompt": "now at night", "size": "1024x1024", "force_single": True, "images": [f"{first_id}#2"]}
            )
            assert not edit.is_error, text_of(edit)
            assert edit.structured_content["made_with"]["images"] == [f"{first_id}#2"]

    # A server without the journal asks RunComfy for the earlier result instead.
    no_journal = server_for(simulator, state_dir, RUNCOMFY_NO_JOURNAL="true")
    async with stdio_client(no_journal) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            again = await session.call_tool("generate_image", {"prompt": "in the rain", "images": [f"{first_id}#2"]})
            assert not again.is_error, text_of(again)
            assert again.structured_content["endpoint"] == "edit"

    for job_id in (edit.structured_content["request_id"], again.structured_content["request_id"]):
        job = await sim(simulator, "GET", f"/__sim/jobs/{job_id}")
        assert job["request"]["image_urls"] == [second_url], "the output URL exactly as RunComfy gave it"
    edited = await download(edit.structured_content["images"][0])
    assert first_pixel(edited) == tinted(first_pixel(await download(second_url)))


async def test_an_https_url_is_passed_through_unchanged(server_on, simulator):
    url = "https://images.invalid/photos/cat.png?size=large&v=2"
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            submitted = await session.call_tool(
                "generate_image", {"prompt": "the cat, as a watercolour", "images": [url, "https://images.invalid/style.jpg"]}
            )
    assert not submitted.is_error, text_of(submitted)
    assert submitted.structured_content["endpoint"] == "edit"
    job = await sim(simulator, "GET", f"/__sim/jobs/{submitted.structured_content['request_id']}")
    assert job["request"]["image_urls"] == [url, "https://images.invalid/style.jpg"]
    assert job["request"]["prompt"] == "the cat, as a watercolour"
    assert job["inputs"][0] == {"kind": "url", "url": url}


async def test_a_batch_of_three_with_progress_and_one_job_cancelled(server_on, simulator):
    await set_sim(simulator, initial_queue_position=3, queue_step_ms=500, run_ms=200, images_per_job=1)
    updates = []

    async def on_progress(progress, total, message):
        updates.append(message)

    results = {}
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def wait_for_all():
                results["batch"] = await session.call_tool(
                    "generate_image_and_wait",
                    {"prompt": "three options", "size": "1024x1024", "count": 3},
                    progress_callback=on_progress,
                )

            async with anyio.create_task_group() as group:
                group.start_soon(wait_for_all)
                with anyio.fail_after(10):
                    while len(jobs := await sim(simulator, "GET", "/__sim/jobs")) < 3:
                        await anyio.sleep(0.05)
                victim = jobs[1]["request_id"]
                cancelled = await session.call_tool("cancel_request", {"request_id": victim})
                assert cancelled.structured_content["outcome"] == "cancelled", text_of(cancelled)

    batch = results["batch"]
    assert not batch.is_error, text_of(batch)
    done = batch.structured_content
    ids = [j["request_id"] for j in jobs]
    assert sorted(done["request_ids"]) == sorted(ids) and len(done["jobs"]) == 3
    by_id = {j["request_id"]: j for j in done["jobs"]}
    assert by_id[victim]["status"] == "cancelled" and by_id[victim]["images"] == []
    assert [by_id[i]["status"] for i in ids if i != victim] == ["succeeded", "succeeded"]
    assert done["status"] == "succeeded" and done["finished"] is True
    assert len(done["images"]) == 2 and len(done["outputs"]) == 2
    assert all(o["reference"].split("#")[0] in ids for o in done["outputs"])
    text = text_of(batch)
    assert "3 jobs: 2 succeeded, 1 cancelled." in text or "3 jobs: 1 cancelled, 2 succeeded." in text, text
    # Numbered across the answer (each job's own image is #1 in its reference), and the count on
    # a line of its own, not run into the last job's line.
    assert "\nImage 1: " in text and "\nImage 2: " in text, text
    assert "\nIn all: 2 images." in text, text
    # One progress stream that names each job.
    joined = " | ".join(updates)
    for n in (1, 2, 3):
        assert f"Job {n} of 3" in joined, joined
    assert "Queued at position" in joined and "Finished" in joined


async def test_cancelling_a_batch_cancels_every_queued_job(server_on, simulator):
    await set_sim(simulator, initial_queue_position=100, queue_step_ms=1000)
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            with anyio.move_on_after(1.5) as scope:
                await session.call_tool("generate_image_and_wait", {"prompt": "never mind", "count": 3})
            assert scope.cancelled_caught
            with anyio.fail_after(10):
                while True:
                    jobs = await sim(simulator, "GET", "/__sim/jobs")
                    if len(jobs) == 3 and all(j["status"] == "cancelled" for j in jobs):
                        break
                    await anyio.sleep(0.05)


async def test_the_deadline_hands_back_every_request_id(server_on, simulator):
    await set_sim(simulator, initial_queue_position=100, queue_step_ms=1000)
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("generate_image_and_wait", {"prompt": "slow", "count": 2, "max_wait_seconds": 1})
    assert not result.is_error, text_of(result)
    done = result.structured_content
    ids = [j["request_id"] for j in await sim(simulator, "GET", "/__sim/jobs")]
    assert sorted(done["request_ids"]) == sorted(ids) and len(ids) == 2
    assert done["finished"] is False and done["status"] == "in_queue"
    assert [j["status"] for j in done["jobs"]] == ["in_queue", "in_queue"]
    for request_id in ids:
        assert request_id in done["next_step"]


async def test_bad_inputs_are_refused_before_anything_is_submitted(simulator, state_dir, tmp_path):
    await set_sim(simulator, initial_queue_position=50, queue_step_ms=1000)
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "photo.png").write_bytes(png(BLUE))
    (allowed / "notes.png").write_bytes(b"these are words, not pixels")
    (allowed / "huge.png").write_bytes(png(BLUE)[:33] + b"\0" * (2 * 1024 * 1024))
    params = server_for(simulator, state_dir, "--input-dir", str(allowed), RUNCOMFY_INPUT_MAX_MB="1")
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            # An earlier job, still queued, with one image to come.
            queued = await session.call_tool("generate_image", {"prompt": "earlier"})
            earlier = queued.structured_content["request_id"]
            submits = (await sim(simulator, "GET", "/__sim/stats"))["submissions"]

            cases = [
                ({"images": [str(outside / "photo.png")]}, "images[0]", ["outside", "--input-dir"]),
                ({"images": ["https://images.invalid/ok.png", str(allowed / "missing.png")]}, "images[1]", ["no file"]),
                ({"images": [str(allowed / "notes.png")]}, "images[0]", ["not a PNG, JPEG or WebP"]),
                ({"images": [str(allowed / "huge.png")]}, "images[0]", ["at most 1 MiB", "--input-max-mb"]),
                ({"images": ["http://images.invalid/cat.png"]}, "images[0]", ["https://", "request_id#n"]),
                ({"images": ["0f9a1c2e-no-such-job"]}, "images[0]", ["no job 0f9a1c2e-no-such-job"]),
                ({"images": [f"{earlier}#1"]}, "images[0]", ["still in_queue"]),
                ({"images": ["photo.png"]}, "images[0]", ["absolute path"]),
                ({"images": ["data:image/png;base64,aGVsbG8="]}, "images[0]", ["does not hold a PNG"]),
                ({"images": ["https://images.invalid/a.png"] * 11}, "images", ["at most 10"]),
                ({"count": 9}, "count", ["from 1 to 8"]),
                ({"count": 0}, "count", ["from 1 to 8"]),
            ]
            for tool in ("generate_image", "generate_image_and_wait"):
                for extra, field, says in cases:
                    result = await session.call_tool(tool, {"prompt": "x", **extra})
                    text = text_of(result)
                    assert result.is_error, (tool, extra, text)
                    assert f"`{field}`" in text and "Nothing was sent to RunComfy" in text, (tool, extra, text)
                    for phrase in says:
                        assert phrase in text, (tool, extra, text)
    assert (await sim(simulator, "GET", "/__sim/stats"))["submissions"] == submits, "no request reached RunComfy's submit"


async def test_a_job_reference_past_its_outputs_names_the_ones_there_are(server_on):
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            done = await session.call_tool("generate_image_and_wait", {"prompt": "one", "force_single": True})
            request_id = done.structured_content["request_id"]
            result = await session.call_tool("generate_image", {"prompt": "x", "images": [f"{request_id}#3"]})
    assert result.is_error
    assert f"has 1 image(s), so there is no {request_id}#3; use {request_id}#1" in text_of(result)


async def test_local_files_are_refused_without_an_input_dir(server_on, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(BLUE))
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("generate_image", {"prompt": "x", "images": [str(photo)]})
    assert result.is_error and "--input-dir" in text_of(result) and "reads none" in text_of(result)
