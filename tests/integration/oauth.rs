//! `--oauth`: every refusal of the sign-in flow, each with its HTTP answer and no token issued —
//! a wrong PKCE verifier, a code used twice, a redirect URI the client did not register, a token
//! for another resource, an expired or revoked token, a consent form without its anti-forgery
//! value, a RunComfy key the upstream rejects, a client metadata URL on a private address — and a
//! client identified by its metadata document (fetched from the test's loopback origin, which
//! only the hidden test setting allows). The happy path with the official Python client and a
//! real browser is tests/python/test_http_oauth.py.

use std::path::Path;

use axum::{routing::get, Json, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{header, redirect::Policy, StatusCode};
use serde_json::{json, Value};

use crate::common::{
    eventually, fast_config,
    http::{answer, initialize, rpc, HttpServer},
    simulator, JournalAt,
};
use runcomfy_mcp::simulator::SimConfig;

const KEY: &str = "rc-oauth-refusals-key-71c4";
const REJECTED: &str = "rc-rejected-key-0d2b";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

async fn start(sim: &runcomfy_mcp::simulator::Simulator, state: &Path, flags: &[&str]) -> HttpServer {
    let mut all = vec!["--oauth"];
    all.extend_from_slice(flags);
    HttpServer::start(
        &sim.base_url(),
        &all,
        &[
            ("RUNCOMFY_NO_JOURNAL", "false"),
            ("RUNCOMFY_STATE_DIR", state.to_str().unwrap()),
        ],
    )
    .await
}

/// Rows of a sign-in table, read raw from the SQLite file.
fn rows(state: &Path, table: &str) -> i64 {
    let db = rusqlite::Connection::open(state.join("journal.sqlite3")).unwrap();
    db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 48]>());
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest))
}

/// One client's sign-in, step by step, as a browser and a client would do it.
pub(crate) struct Flow<'a> {
    server: &'a HttpServer,
    /// The server's public URL: its issuer, and with `/mcp` the resource.
    public: String,
    http: reqwest::Client,
    client_id: String,
    verifier: String,
    challenge: String,
}

/// The consent page's form as served: its sealed request, its anti-forgery value and cookie.
struct Form {
    request: String,
    csrf: String,
    cookie: String,
}

fn hidden(page: &str, name: &str) -> String {
    let start = page.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    page[start..].split('"').next().unwrap().to_owned()
}

impl<'a> Flow<'a> {
    pub(crate) async fn register(server: &'a HttpServer) -> Self {
        let http = no_redirects();
        let registered: Value = http
            .post(server.url("/oauth/register"))
            .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Refusals"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self::with_client(server, registered["client_id"].as_str().unwrap())
    }

    fn with_client(server: &'a HttpServer, client_id: &str) -> Self {
        let (verifier, challenge) = pkce();
        Self {
            server,
            public: server.base.clone(),
            http: no_redirects(),
            client_id: client_id.to_owned(),
            verifier,
            challenge,
        }
    }

    /// Behind `public` (replicas behind one address).
    fn at(mut self, public: &str) -> Self {
        self.public = public.to_owned();
        self
    }

    fn resource(&self) -> String {
        format!("{}/mcp", self.public)
    }

    pub(crate) async fn authorize(&self, redirect: &str, resource: &str) -> reqwest::Response {
        self.http
            .get(self.server.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", redirect),
                ("state", "s-1"),
                ("code_challenge", &self.challenge),
                ("code_challenge_method", "S256"),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn form(&self) -> Form {
        let page = self.authorize(REDIRECT, &self.resource()).await;
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        Form {
            request: hidden(&html, "request"),
            csrf: hidden(&html, "csrf"),
            cookie,
        }
    }

    async fn answer(&self, fields: &[(&str, &str)], cookie: Option<&str>) -> reqwest::Response {
        let mut post = self.http.post(self.server.url("/oauth/authorize")).form(fields);
        if let Some(cookie) = cookie {
            post = post.header(header::COOKIE, cookie);
        }
        post.send().await.unwrap()
    }

    /// Allows with `key` and the other fields `more` on a fresh consent page; the answer.
    pub(crate) async fn allow(&self, key: &str, more: &[(&str, &str)]) -> reqwest::Response {
        let form = self.form().await;
        let mut fields = vec![
            ("request", form.request.as_str()),
            ("csrf", form.csrf.as_str()),
            ("api_key", key),
            ("decision", "allow"),
        ];
        fields.extend_from_slice(more);
        self.answer(&fields, Some(&form.cookie)).await
    }

    /// Consents with `key`; the code from the redirect.
    async fn code(&self, key: &str) -> String {
        self.code_with(key, &[]).await
    }

    /// Consents with `key` and the fields `more`; the code from the redirect.
    async fn code_with(&self, key: &str, more: &[(&str, &str)]) -> String {
        let answer = self.allow(key, more).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let location = reqwest::Url::parse(answer.headers()[header::LOCATION].to_str().unwrap()).unwrap();
        let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(query["state"], "s-1");
        assert_eq!(query["iss"], self.public, "RFC 9207");
        query["code"].clone()
    }

    async fn token(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let answer = self
            .http
            .post(self.server.url("/oauth/token"))
            .form(fields)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    async fn exchange(&self, code: &str, verifier: &str, redirect: &str) -> (StatusCode, Value) {
        let resource = self.resource();
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", &self.client_id),
            ("redirect_uri", redirect),
            ("resource", &resource),
        ])
        .await
    }

    async fn tokens(&self) -> Value {
        self.tokens_for(KEY).await
    }

    /// Signs in with `key` on the consent page; the tokens.
    async fn tokens_for(&self, key: &str) -> Value {
        self.tokens_with(key, &[]).await
    }

    /// Signs in with `key` and the fields `more` on the consent page; the tokens.
    pub(crate) async fn tokens_with(&self, key: &str, more: &[(&str, &str)]) -> Value {
        let code = self.code_with(key, more).await;
        let (status, tokens) = self.exchange(&code, &self.verifier, REDIRECT).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }
}

/// The status of an MCP request to `server` with `token`, and its challenge.
async fn mcp_with(server: &HttpServer, token: &str) -> (StatusCode, String) {
    let answer = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    let challenge = answer
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (answer.status(), challenge)
}

fn error_of(answer: &(StatusCode, Value)) -> &str {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    answer.1["error"].as_str().unwrap()
}

#[tokio::test]
async fn the_code_the_verifier_and_the_redirect_uri_are_checked_and_nothing_is_issued_otherwise() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let flow = Flow::register(&server).await;

    // No token at all: 401, pointing at the protected resource metadata.
    let (status, challenge) = mcp_with(&server, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains(&format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.base
    )));

    // A redirect URI the client did not register: an error page here, never a redirect there.
    let elsewhere = flow
        .authorize("http://127.0.0.1:9/elsewhere", &server.url("/mcp"))
        .await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert!(elsewhere.headers().get(header::LOCATION).is_none());

    // A token for another resource is never asked for here.
    let other = flow.authorize(REDIRECT, "http://127.0.0.1:1/mcp").await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
    assert!(other.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .contains("error=invalid_target"));

    // A wrong verifier: refused, and the code is used up with it.
    let code = flow.code(KEY).await;
    let (wrong, _) = pkce();
    assert_eq!(error_of(&flow.exchange(&code, &wrong, REDIRECT).await), "invalid_grant");
    assert_eq!(
        error_of(&flow.exchange(&code, &flow.verifier, REDIRECT).await),
        "invalid_grant"
    );
    // Another redirect URI than the code's.
    let code = flow.code(KEY).await;
    assert_eq!(
        error_of(
            &flow
                .exchange(&code, &flow.verifier, "http://127.0.0.1:9/elsewhere")
                .await
        ),
        "invalid_grant"
    );
    // Another resource than this server's.
    let code = flow.code(KEY).await;
    let for_other = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &flow.verifier),
            ("client_id", &flow.client_id),
            ("redirect_uri", REDIRECT),
            ("resource", "http://127.0.0.1:1/mcp"),
        ])
        .await;
    assert_eq!(error_of(&for_other), "invalid_target");
    assert_eq!(rows(state.path(), "oauth_tokens"), 0, "no token issued by any refusal");

    // A code used twice: the second use is refused and revokes what the first one got.
    let code = flow.code(KEY).await;
    let (ok, tokens) = flow.exchange(&code, &flow.verifier, REDIRECT).await;
    assert_eq!(ok, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_with(&server, access).await.0, StatusCode::OK);
    assert_eq!(
        error_of(&flow.exchange(&code, &flow.verifier, REDIRECT).await),
        "invalid_grant"
    );
    let (status, challenge) = mcp_with(&server, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(rows(state.path(), "oauth_tokens"), 0);
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn expired_revoked_disconnected_and_other_resources_tokens_are_refused() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    // Stateless: each check below is an `initialize`, and on a stateful server every one that
    // passes opens a session, so waiting out the expiry on a slow machine could fill the session
    // cap and be answered 503 instead.
    let server = start(&sim, state.path(), &["--oauth-access-token-secs", "1", "--stateless"]).await;
    let flow = Flow::register(&server).await;

    // Expired: good at first, refused once its second has passed.
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_with(&server, &access).await.0, StatusCode::OK);
    eventually(
        async || match mcp_with(&server, &access).await.0 {
            StatusCode::UNAUTHORIZED => Ok(()),
            other => Err(other),
        },
        "the access token to expire",
    )
    .await;
    // The refresh token still works, once: it rotates.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &flow.client_id),
        ])
        .await;
    assert_eq!(refreshed.0, StatusCode::OK, "{}", refreshed.1);

    // Revoked (RFC 7009), by its refresh token: its access token goes with it.
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(mcp_with(&server, &access).await.0, StatusCode::UNAUTHORIZED);

    // The person disconnects every app at once, by their key: the grant and its key are gone.
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let page = reqwest::Client::new()
        .post(server.url("/oauth/disconnect"))
        .form(&[("api_key", KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text().await.unwrap().contains("2 connections removed"),
        "the refreshed one and this one"
    );
    assert_eq!(mcp_with(&server, &access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(rows(state.path(), "oauth_grants"), 0);

    assert_eq!(server.stop().await.code(), Some(0));

    // A token for another resource: a second server on the same database under another public
    // URL honours nothing the first one issued (and the first still does). The first issues
    // tokens of the default lifetime here: one of a second could expire while the second server
    // starts, and the last check would fail for a reason that is not the one it checks.
    let server = start(&sim, state.path(), &["--stateless"]).await;
    let flow = Flow::register(&server).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let other = start(
        &sim,
        state.path(),
        &["--public-url", "http://localhost:1", "--stateless"],
    )
    .await;
    let (status, challenge) = mcp_with(&other, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("resource_metadata=\"http://localhost:1/.well-known/oauth-protected-resource/mcp\""));
    assert_eq!(mcp_with(&server, &access).await.0, StatusCode::OK);
    assert_eq!(other.stop().await.code(), Some(0));
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn a_consent_without_its_anti_forgery_value_or_with_a_rejected_key_grants_nothing() {
    let sim = simulator(SimConfig {
        rejected_tokens: vec![REJECTED.to_owned()],
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let flow = Flow::register(&server).await;
    let form = flow.form().await;
    let without_value = [
        ("request", form.request.as_str()),
        ("api_key", KEY),
        ("decision", "allow"),
    ];
    let with_value = [
        ("request", form.request.as_str()),
        ("csrf", form.csrf.as_str()),
        ("api_key", KEY),
        ("decision", "allow"),
    ];
    // Without the value in the form, or without its cookie (a post from another site): 403.
    for (fields, cookie) in [
        (&without_value[..], Some(form.cookie.as_str())),
        (&with_value[..], None),
    ] {
        let answer = flow.answer(fields, cookie).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert!(answer.headers().get(header::LOCATION).is_none());
        assert!(answer.text().await.unwrap().contains("anti-forgery value"));
    }

    // A key RunComfy rejects: the page again, saying so; nothing kept.
    let fields = [
        ("request", form.request.as_str()),
        ("csrf", form.csrf.as_str()),
        ("api_key", REJECTED),
        ("decision", "allow"),
    ];
    let answer = flow.answer(&fields, Some(&form.cookie)).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(answer.headers().get(header::LOCATION).is_none());
    let page = answer.text().await.unwrap();
    assert!(page.contains("RunComfy did not accept this API key"), "{page}");
    assert!(!page.contains(REJECTED), "the key is never shown again");
    assert_eq!(rows(state.path(), "oauth_grants"), 0);
    assert_eq!(rows(state.path(), "oauth_codes"), 0);
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn client_metadata_documents_are_fetched_only_from_public_https_addresses() {
    // The test's own document host, on loopback: allowed only through the hidden test setting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let document_url = format!("{origin}/client.json");
    let document = json!({
        "client_id": document_url,
        "client_name": "Document client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    });
    let app = Router::new().route("/client.json", get(move || async move { Json(document) }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &["--oauth-test-client-metadata-origin", &origin]).await;

    // Private, loopback, link-local and plain-http addresses are refused, with an error page.
    for (client_id, why) in [
        ("https://10.0.0.7/client.json", "a private address"),
        ("https://127.0.0.1/client.json", "a loopback address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://client.example/client.json", "only https URLs are fetched"),
    ] {
        let refused = Flow::with_client(&server, client_id)
            .authorize(REDIRECT, &server.url("/mcp"))
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{client_id}");
        assert!(refused.headers().get(header::LOCATION).is_none());
        let page = refused.text().await.unwrap();
        assert!(page.contains(why), "{client_id}: {page}");
    }

    // The allowed document's client signs in like a registered one.
    let flow = Flow::with_client(&server, &document_url);
    let tokens = flow.tokens().await;
    assert_eq!(
        mcp_with(&server, tokens["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        rows(state.path(), "oauth_clients"),
        0,
        "a document's client is not registered"
    );
    assert_eq!(server.stop().await.code(), Some(0));
}

/// A request on a stateless server with an access token: the whole JSON-RPC answer.
async fn call(server: &HttpServer, token: &str, id: u64, method: &str, params: Value) -> Value {
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&rpc(id, method, params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(response, id).await
}

/// A tool call on a stateless server with an access token.
pub(crate) async fn tool(server: &HttpServer, token: &str, id: u64, name: &str, arguments: Value) -> Value {
    call(
        server,
        token,
        id,
        "tools/call",
        json!({ "name": name, "arguments": arguments }),
    )
    .await["result"]
        .clone()
}

/// The text of a tool's error answer.
pub(crate) fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], json!(true), "{result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

/// An id no job has.
const NOBODYS: &str = "00000000-0000-4000-8000-000000000000";

#[tokio::test]
async fn two_people_signed_in_on_two_replicas_sharing_postgresql_see_only_their_own_jobs_resources_and_tasks() {
    let Some(db) = JournalAt::database("oauth_replicas") else {
        return;
    };
    const ALICE: &str = "rc-oauth-refusals-key-71c4";
    const BOB: &str = "rc-rejected-key-0d2b";
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let url = db.cluster().tcp_url();
    // Behind one load balancer: one public address, one owner secret.
    let public = "http://localhost:8443";
    let flags = ["--oauth", "--stateless", "--public-url", public];
    let env = [
        ("RUNCOMFY_NO_JOURNAL", "false"),
        ("RUNCOMFY_JOURNAL_URL", url.as_str()),
        ("RUNCOMFY_MCP_OWNER_SECRET", "a secret both replicas share, long enough"),
    ];
    let a = HttpServer::start(&sim.base_url(), &flags, &env).await;
    let b = HttpServer::start(&sim.base_url(), &flags, &env).await;

    // Alice signs in through A, Bob through B; each token works on the other replica.
    let alice = Flow::register(&a).await.at(public).tokens_for(ALICE).await;
    let bob = Flow::register(&b).await.at(public).tokens_for(BOB).await;
    let alice = alice["access_token"].as_str().unwrap();
    let bob = bob["access_token"].as_str().unwrap();
    let submit = |server, token, id, prompt: &'static str| async move {
        let submitted = tool(
            server,
            token,
            id,
            "generate_image",
            json!({ "prompt": prompt, "force_single": true }),
        )
        .await;
        assert_eq!(submitted["isError"], json!(false), "{submitted}");
        submitted["structuredContent"]["request_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alices = submit(&b, alice, 1, "alice's fox").await;
    let bobs = submit(&a, bob, 2, "bob's owl").await;

    // Each job ran on its person's own key.
    let uses: Vec<runcomfy_mcp::simulator::TokenUse> = reqwest::get(format!("{}/__sim/tokens", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_of = |id: &str| {
        uses.iter()
            .filter(|u| u.call == "submit" && u.subject == id)
            .map(|u| u.token.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(key_of(&alices), [ALICE]);
    assert_eq!(key_of(&bobs), [BOB]);

    // Each lists only their own, on either replica; another's id is "not found" as nobody's is.
    for (server, token, own, theirs) in [(&a, alice, &alices, &bobs), (&b, bob, &bobs, &alices)] {
        let listed = tool(server, token, 3, "list_jobs", json!({})).await;
        let ids: Vec<&str> = listed["structuredContent"]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [own.as_str()]);
        let status = tool(server, token, 4, "check_status", json!({ "request_id": theirs })).await;
        assert_eq!(status["isError"], json!(true), "{status}");
        assert!(status["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no job with this request_id"));
    }

    // Every other way in: to Bob, Alice's job, its image, a reference to it and her task are
    // as unknown as what nobody has, on either replica (what per-user keys promise, for people
    // signed in instead).
    let mut n = 1000;
    eventually(
        async || {
            n += 1;
            let state = tool(&a, alice, n, "check_status", json!({ "request_id": alices })).await;
            match state["structuredContent"]["finished"] == json!(true) {
                true => Ok(()),
                false => Err(state),
            }
        },
        "alice's job to finish",
    )
    .await;
    let same = |theirs: &str, nobodys: &str| {
        assert_eq!(theirs.replace(&alices, "ID"), nobodys.replace(NOBODYS, "ID"));
    };
    for server in [&a, &b] {
        for (n, name) in [
            (10, "check_status"),
            (20, "get_result"),
            (30, "cancel_request"),
            (40, "generate_variations"),
        ] {
            let args = |id: &str| match name {
                "generate_variations" => json!({ "request_id": id, "count": 1 }),
                _ => json!({ "request_id": id }),
            };
            let theirs = error_text(&tool(server, bob, n, name, args(&alices)).await);
            let nobodys = error_text(&tool(server, bob, n + 1, name, args(NOBODYS)).await);
            let unknown = match name {
                "generate_variations" => "not recorded on this machine",
                _ => "no job with this request_id",
            };
            assert!(theirs.contains(unknown), "{name}: {theirs}");
            same(&theirs, &nobodys);
        }
        let edit = |n, image: String| {
            tool(
                server,
                bob,
                n,
                "generate_image",
                json!({ "prompt": "make it green", "images": [image], "force_single": true }),
            )
        };
        same(
            &error_text(&edit(50, format!("{alices}#1")).await),
            &error_text(&edit(51, format!("{NOBODYS}#1")).await),
        );
        let image = |id: &str| json!({ "uri": format!("runcomfy://jobs/{id}/images/1") });
        let theirs = call(server, bob, 60, "resources/read", image(&alices)).await;
        let nobodys = call(server, bob, 61, "resources/read", image(NOBODYS)).await;
        same(
            theirs["error"]["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{theirs}")),
            nobodys["error"]["message"].as_str().unwrap(),
        );
        let listed = call(server, bob, 62, "resources/list", json!({})).await.to_string();
        assert!(!listed.contains(&alices), "{listed}");
    }
    let own = call(
        &b,
        alice,
        63,
        "resources/read",
        json!({ "uri": format!("runcomfy://jobs/{alices}/images/1") }),
    )
    .await;
    assert!(own["result"]["contents"][0]["blob"].is_string(), "{own}");
    let created = call(
        &a,
        alice,
        70,
        "tools/call",
        crate::per_user_keys::with_tasks(json!({
            "name": "generate_image",
            "arguments": { "prompt": "alice's task", "force_single": true }
        })),
    )
    .await;
    let task = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned();
    for server in [&a, &b] {
        for (n, method) in [(80, "tasks/get"), (90, "tasks/cancel")] {
            let params = |id: &str| crate::per_user_keys::with_tasks(json!({ "taskId": id }));
            let theirs = call(server, bob, n, method, params(&task)).await;
            let nobodys = call(server, bob, n + 1, method, params("no-such-task")).await;
            assert_eq!(
                theirs["error"]["message"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method}: {theirs}"))
                    .replace(&task, "ID"),
                nobodys["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace("no-such-task", "ID"),
                "{method}"
            );
        }
    }
    let hers = call(
        &b,
        alice,
        95,
        "tasks/get",
        crate::per_user_keys::with_tasks(json!({ "taskId": task })),
    )
    .await;
    assert!(hers["result"]["status"].is_string(), "{hers}");

    // A revocation through one replica holds on the other at once.
    let revoked = reqwest::Client::new()
        .post(a.url("/oauth/revoke"))
        .form(&[("token", alice)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(mcp_with(&b, alice).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(mcp_with(&b, bob).await.0, StatusCode::OK);
    assert_eq!(a.stop().await.code(), Some(0));
    assert_eq!(b.stop().await.code(), Some(0));
}
