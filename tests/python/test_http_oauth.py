"""Sign-in with OAuth 2.1 (`serve --transport http --oauth`), end to end with the official Python
SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`): discovery from the 401, dynamic
registration, authorization with PKCE, the consent page filled in by a person in headless
Chromium (with JavaScript off: the page needs none), the token, a `tools/call` that runs a job on
the simulator with the key given on the consent page, a refresh, and a revocation after which the
next call gets 401. The person also asks, on the consent page, to be asked before any call above
$0.25: a $0.45 call is asked about through the client's elicitation_callback and runs on accept.
The database is read raw: the key is nowhere in it in plaintext."""

import http.server
import os
import signal
import sqlite3
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2 as httpx
import pytest
from cdp import Browser, chromium_path
from conftest import BIN, env_for
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from test_stdio_core import text_of
from test_stdio_waiting import set_sim

pytestmark = pytest.mark.anyio

# The person's RunComfy key, typed on the consent page: the only place it enters.
PERSONS_KEY = "rc-oauth-person-key-5b8e1f"


class MemoryStorage:
    """The SDK's token storage, in memory."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Callback:
    """The client's redirect URI: a listener on loopback that keeps the query it is sent."""

    def __init__(self):
        self.query = None
        self.arrived = threading.Event()
        callback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                callback.query = parse_qs(urlparse(self.path).query)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"You can close this window.")
                callback.arrived.set()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def result(self):
        if not self.arrived.wait(60):
            raise TimeoutError("the browser never came back to the redirect URI")
        self.arrived.clear()
        one = {k: v[0] for k, v in self.query.items()}
        return AuthorizationCodeResult(code=one["code"], state=one.get("state"), iss=one.get("iss"))


@pytest.fixture
def oauth_server(simulator, tmp_path):
    """`serve --transport http --oauth` on a free port, on the standalone simulator; yields its
    base URL and state directory, and must exit cleanly on SIGTERM."""
    state = tmp_path / "state"
    env = env_for(simulator, RUNCOMFY_STATE_DIR=str(state))
    cmd = [BIN, "serve", "--transport", "http", "--port", "0", "--oauth", "--shutdown-grace-secs", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    printed = proc.stdout.readline().strip()
    assert printed.startswith("http://127.0.0.1:") and printed.endswith("/mcp"), printed
    yield printed.removesuffix("/mcp"), state
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


@pytest.fixture
def browser():
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    browser = Browser()
    yield browser
    browser.close()


def consent(browser, url, seen):
    """What the person does: reads the page, types their key and limits, clicks Allow."""
    browser.page("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.open(url)
    page = browser.text()
    seen.append(page)
    browser.type_into("#api_key", PERSONS_KEY)
    browser.type_into("#max_spend", "3")
    browser.type_into("#max_jobs", "10")
    browser.type_into("#confirm_above", "0.25")
    browser.click("button[value=allow]")


def accepting(asked):
    """The person's answer to every spend question: yes (each question kept)."""

    async def callback(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={})

    return callback


def raw_rows(state):
    """Every value of every row of the sign-in tables, and the database's bytes on disk."""
    path = state / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        rows = {
            table: db.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("oauth_clients", "oauth_grants", "oauth_codes", "oauth_tokens")
        }
    on_disk = b"".join(p.read_bytes() for p in state.iterdir() if p.name.startswith("journal.sqlite3"))
    return rows, on_disk


async def test_the_official_oauth_client_signs_in_runs_a_job_with_the_consent_pages_key_refreshes_and_revokes(
    simulator, oauth_server, browser
):
    base, state = oauth_server
    await set_sim(simulator, record_tokens=True)
    callback = Callback()
    pages = []
    asked = []
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="Python SDK e2e",
            redirect_uris=[callback.url],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=lambda url: anyio.to_thread.run_sync(consent, browser, url, pages),
        callback_handler=lambda: anyio.to_thread.run_sync(callback.result),
    )
    async with httpx.AsyncClient(auth=provider, timeout=httpx.Timeout(30, read=60)) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=accepting(asked)) as session:
                await session.initialize()
                submitted = await session.call_tool(
                    "generate_image", {"prompt": "a lighthouse at dusk", "size": "1024x1024", "force_single": True}
                )
                assert not submitted.is_error, text_of(submitted)
                request_id = submitted.structured_content["request_id"]
                assert asked == [], "$0.03 at most: within the person's $0.25, not asked"

                # The consent page said who asks and what it can do, and had JavaScript off.
                assert len(pages) == 1
                assert "Connect Python SDK e2e to RunComfy" in pages[0]
                assert "paid from your RunComfy balance" in pages[0]
                assert "<script" not in pages[0]

                # The job ran on the person's key, given on the consent page and nowhere else.
                async with httpx.AsyncClient() as plain:
                    uses = (await plain.get(f"{simulator}/__sim/tokens")).json()
                submit = [u for u in uses if u["call"] == "submit" and u["subject"] == request_id]
                assert [u["token"] for u in submit] == [PERSONS_KEY], uses
                assert {u["token"] for u in uses} == {PERSONS_KEY}, "the consent check and every call: that key"

                # The database keeps the grant with the person's limits, and never the key in plaintext.
                rows, on_disk = raw_rows(state)
                assert len(rows["oauth_grants"]) == 1 and len(rows["oauth_tokens"]) == 2, rows
                grant = rows["oauth_grants"][0]
                assert 3.0 in grant and 10 in grant and 0.25 in grant, grant
                assert PERSONS_KEY not in repr(rows) and PERSONS_KEY.encode() not in on_disk
                first = storage.tokens
                assert first.access_token not in repr(rows) and first.refresh_token not in repr(rows)

                # Up to 15 images at $0.03: above the person's own $0.25, so they are asked first.
                big = await session.call_tool("generate_image", {"prompt": "a lighthouse at dawn", "size": "1024x1024"})
                assert not big.is_error, text_of(big)
                assert len(asked) == 1 and asked[0].startswith("This will cost up to $0.45"), asked

                # Refresh: the client takes its token to be expired, refreshes, and goes on.
                provider.context.token_expiry_time = time.time() - 1
                listed = await session.call_tool("list_jobs", {})
                assert not listed.is_error and request_id in text_of(listed)
                second = storage.tokens
                assert second.access_token != first.access_token
                assert second.refresh_token != first.refresh_token, "refresh tokens rotate"

    # Revocation (RFC 7009): the connection is gone, and the next call is told to sign in.
    async with httpx.AsyncClient() as plain:
        revoked = await plain.post(f"{base}/oauth/revoke", data={"token": second.refresh_token})
        assert revoked.status_code == 200
        after = await plain.post(
            f"{base}/mcp",
            headers={"Authorization": f"Bearer {second.access_token}", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert after.status_code == 401
        challenge = after.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge
        assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
        refresh = await plain.post(
            f"{base}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second.refresh_token,
                "client_id": storage.client_info.client_id,
            },
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    rows, _ = raw_rows(state)
    assert rows["oauth_grants"] == [] and rows["oauth_tokens"] == [], "the key went with the grant"
