"""generate_image_and_wait through the official Python client: progress and cancellation."""

import anyio
import httpx2 as httpx
import pytest
from conftest import eventually
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.anyio


async def set_sim(simulator, **config):
    async with httpx.AsyncClient() as http:
        (await http.put(f"{simulator}/__sim/config", json=config)).raise_for_status()


async def sim_jobs(simulator):
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{simulator}/__sim/jobs")).json()


async def test_progress_reaches_the_python_client(simulator, server_on):
    await set_sim(simulator, initial_queue_position=2, queue_step_ms=300, run_ms=500)
    updates = []

    async def on_progress(progress, total, message):
        updates.append((progress, message))

    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool(
                "generate_image_and_wait", {"prompt": "a patient heron"}, progress_callback=on_progress
            )
    assert not result.is_error, result
    assert result.structured_content["status"] == "succeeded"
    assert len(result.structured_content["images"]) == 1
    values = [p for p, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values), updates
    messages = " | ".join(m for _, m in updates)
    for phase in ("Submitted", "Queued at position", "Generating", "Finished"):
        assert phase in messages, messages


async def test_cancelling_the_call_cancels_the_queued_job(simulator, server_on):
    await set_sim(simulator, initial_queue_position=100, queue_step_ms=1000)
    async with stdio_client(server_on) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await cancel_a_waiting_call(session, simulator)


async def cancel_a_waiting_call(session, simulator):
    """Abandons a generate_image_and_wait call on a queued job (the client sends
    notifications/cancelled) once the job exists; the simulator's job must end cancelled and the
    session keep serving."""
    scope = anyio.CancelScope()

    async def wait_call():
        with scope:
            await session.call_tool("generate_image_and_wait", {"prompt": "never mind"})

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait_call)
        await eventually(lambda: sim_jobs(simulator), "the job to reach the simulator")
        scope.cancel()
    assert scope.cancelled_caught

    async def cancelled():
        jobs = await sim_jobs(simulator)
        return jobs if jobs and jobs[0]["status"] == "cancelled" else None

    jobs = await eventually(cancelled, "the job to be cancelled")
    status = await session.call_tool("check_status", {"request_id": jobs[0]["request_id"]})
    assert status.structured_content["status"] == "cancelled"
