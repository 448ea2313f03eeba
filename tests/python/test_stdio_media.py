"""Result media as the official Python MCP client sees it: a JPEG preview as image content, a
resource_link per output, and the file saved with --output-dir."""

import base64
import pathlib

import pytest
from conftest import eventually
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.anyio


async def test_finished_result_carries_preview_link_and_saved_file(server_params, tmp_path):
    out = tmp_path / "pictures"
    server_params.args = ["serve", "--simulate", "--output-dir", str(out)]
    async with stdio_client(server_params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            submitted = await session.call_tool("generate_image", {"prompt": "a fox", "size": "2560x1440", "force_single": True})
            request_id = submitted.structured_content["request_id"]

            async def finished():
                result = await session.call_tool("get_result", {"request_id": request_id})
                assert not result.is_error
                return result if result.structured_content["finished"] else None

            result = await eventually(finished, "get_result to see the job finished", interval=0.1)

    kinds = [c.type for c in result.content]
    assert kinds == ["text", "image", "resource_link"], kinds
    image = result.content[1]
    assert image.mime_type == "image/jpeg"
    jpeg = base64.b64decode(image.data)
    assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) <= 150 * 1024

    link = result.content[2]
    output = result.structured_content["outputs"][0]
    assert str(link.uri) == output["url"] and link.mime_type == "image/png"
    assert (output["width"], output["height"]) == (2560, 1440)
    assert output["inline"]["form"] == "preview" and max(output["inline"]["width"], output["inline"]["height"]) == 768

    saved = pathlib.Path(output["saved_path"])
    assert saved.parent == out.resolve() and saved.name == f"{request_id}-1.png"
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved.stat().st_size == output["bytes"] == link.size
