//! The company mode (`--oauth-issuer`, issue 39 item 1): the server is only a protected
//! resource behind the test's own identity provider — a throwaway key set served from loopback
//! (allowed only through the hidden test setting) and tokens the test signs. A good token runs a
//! job on the operator's key; another issuer, another audience, a bad signature, an expired
//! token, `alg: none` and HS256 are refused with a 401 and no job; each person's daily limit is
//! counted apart, and each sees only their own jobs.

use axum::{routing::get, Json, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{header, StatusCode};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use serde_json::{json, Value};

use crate::common::{
    fast_config,
    http::{answer, rpc, HttpServer},
    simulator, TOKEN,
};
use runcomfy_mcp::simulator::{SimConfig, TokenUse};

const AUDIENCE: &str = "runcomfy-mcp-company-test";

/// The test's identity provider: an Ed25519 key and a P-256 key, published as a JWK set.
struct Provider {
    issuer: String,
    ed: Ed25519KeyPair,
    ec: EcdsaKeyPair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    async fn start() -> Self {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = ec.public_key().as_ref();
        let jwks = json!({ "keys": [
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "use": "sig", "x": b64(ed.public_key().as_ref()) },
            { "kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..]) },
        ]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        // Its OpenID Connect discovery document names where the keys are.
        let discovery = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/keys") });
        let app = Router::new()
            .route("/keys", get(move || async move { Json(jwks) }))
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { issuer, ed, ec }
    }

    fn claims(&self, sub: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({ "iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600 })
    }

    /// `claims` signed with the Ed25519 key (`alg: EdDSA`).
    fn ed(&self, claims: &Value) -> String {
        let signed = signing_input("EdDSA", "ed-1", claims);
        format!("{signed}.{}", b64(self.ed.sign(signed.as_bytes()).as_ref()))
    }

    /// `claims` signed with the P-256 key (`alg: ES256`).
    fn es(&self, claims: &Value) -> String {
        let signed = signing_input("ES256", "ec-1", claims);
        let sig = self.ec.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64(sig.as_ref()))
    }
}

fn signing_input(alg: &str, kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": alg, "typ": "JWT", "kid": kid });
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

async fn start(provider: &Provider, sim: &runcomfy_mcp::simulator::Simulator, state: &std::path::Path) -> HttpServer {
    let jwks = format!("{}/keys", provider.issuer);
    start_with(provider, sim, state, &["--oauth-jwks-url", &jwks]).await
}

async fn start_with(
    provider: &Provider,
    sim: &runcomfy_mcp::simulator::Simulator,
    state: &std::path::Path,
    flags: &[&str],
) -> HttpServer {
    let mut all = vec![
        "--stateless",
        "--oauth-issuer",
        &provider.issuer,
        "--oauth-audience",
        AUDIENCE,
        "--oauth-test-jwks-origin",
        &provider.issuer,
        // $0.05 a day: one job at $0.03 fits, a second does not — for each person.
        "--max-spend-usd-per-day",
        "0.05",
    ];
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

async fn post(server: &HttpServer, token: &str, id: u64, name: &str, arguments: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&rpc(id, "tools/call", json!({ "name": name, "arguments": arguments })))
        .send()
        .await
        .unwrap()
}

async fn tool(server: &HttpServer, token: &str, id: u64, name: &str, arguments: Value) -> Value {
    let response = post(server, token, id, name, arguments).await;
    assert_eq!(response.status(), StatusCode::OK);
    answer(response, id).await["result"].clone()
}

async fn submits(sim: &runcomfy_mcp::simulator::Simulator) -> Vec<TokenUse> {
    let uses: Vec<TokenUse> = reqwest::get(format!("{}/__sim/tokens", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    uses.into_iter().filter(|u| u.call == "submit").collect()
}

fn fox() -> Value {
    json!({ "prompt": "a fox", "force_single": true })
}

#[tokio::test]
async fn only_the_providers_current_tokens_for_this_audience_sign_in() {
    let provider = Provider::start().await;
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&provider, &sim, state.path()).await;

    // The resource metadata names the provider; a request without a token is sent there.
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["authorization_servers"], json!([provider.issuer]));
    let bare = reqwest::Client::new()
        .post(server.url("/mcp"))
        .json(&rpc(1, "tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let challenge = bare.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("resource_metadata=") && challenge.contains("/.well-known/oauth-protected-resource/mcp"),
        "{challenge}"
    );

    // Refused, each with a 401 and nothing sent upstream.
    let mut other_issuer = provider.claims("alice");
    other_issuer["iss"] = json!("https://idp.other.example");
    let mut other_audience = provider.claims("alice");
    other_audience["aud"] = json!("another-api");
    let mut expired = provider.claims("alice");
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let good = provider.ed(&provider.claims("alice"));
    let (signed, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", b64(&[7u8; 64]));
    let stranger = Provider::start().await.ed(&provider.claims("alice"));
    let none = format!("{}.", signing_input("none", "ed-1", &provider.claims("alice")));
    let hs256 = format!(
        "{}.{}",
        signing_input("HS256", "ed-1", &provider.claims("alice")),
        b64(&[1; 32])
    );
    for (why, token) in [
        ("another issuer", provider.ed(&other_issuer)),
        ("another audience", provider.ed(&other_audience)),
        ("expired", provider.ed(&expired)),
        ("signature is not valid", forged),
        ("signature is not valid", stranger),
        ("algorithm", none),
        ("algorithm", hs256),
    ] {
        let refused = post(&server, &token, 2, "generate_image", fox()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{why}");
        let challenge = refused.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains("invalid_token") && challenge.contains(why),
            "{why}: {challenge}"
        );
    }
    assert!(submits(&sim).await.is_empty(), "no refused token made a job");

    // The good tokens (EdDSA and ES256) run jobs, paid with the operator's key.
    for token in [good, provider.es(&provider.claims("bob"))] {
        let made = tool(&server, &token, 3, "generate_image", fox()).await;
        assert_eq!(made["isError"], json!(false), "{made}");
    }
    let uses = submits(&sim).await;
    assert_eq!(uses.len(), 2);
    assert!(uses.iter().all(|u| u.token == TOKEN), "the operator's key pays");
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn two_people_have_their_own_jobs_and_their_own_daily_limit() {
    let provider = Provider::start().await;
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&provider, &sim, state.path()).await;
    let alice = provider.ed(&provider.claims("alice"));
    let bob = provider.es(&provider.claims("bob"));

    let made = tool(&server, &alice, 1, "generate_image", fox()).await;
    assert_eq!(made["isError"], json!(false), "{made}");
    let alices = made["structuredContent"]["request_id"].as_str().unwrap().to_owned();
    // Alice is at her limit; Bob is not, though the same server has spent as much for her.
    let refused = tool(&server, &alice, 2, "generate_image", fox()).await;
    assert_eq!(refused["isError"], json!(true), "{refused}");
    assert!(refused.to_string().contains("Spending limit reached"), "{refused}");
    let made = tool(&server, &bob, 3, "generate_image", fox()).await;
    assert_eq!(made["isError"], json!(false), "{made}");
    let bobs = made["structuredContent"]["request_id"].as_str().unwrap().to_owned();
    assert_eq!(submits(&sim).await.len(), 2, "the refused submit was not sent");

    // Each lists only their own; the other's id is "not found".
    for (token, own, theirs) in [(&alice, &alices, &bobs), (&bob, &bobs, &alices)] {
        let listed = tool(&server, token, 4, "list_jobs", json!({})).await;
        let ids: Vec<&str> = listed["structuredContent"]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [own.as_str()]);
        let status = tool(&server, token, 5, "check_status", json!({ "request_id": theirs })).await;
        assert_eq!(status["isError"], json!(true), "{status}");
        assert!(status.to_string().contains("no job with this request_id"), "{status}");
    }
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn without_a_key_set_url_the_keys_are_found_through_the_issuers_discovery_document() {
    let provider = Provider::start().await;
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let server = start_with(&provider, &sim, state.path(), &[]).await;
    let made = tool(
        &server,
        &provider.ed(&provider.claims("carol")),
        1,
        "generate_image",
        fox(),
    )
    .await;
    assert_eq!(made["isError"], json!(false), "{made}");
    assert_eq!(server.stop().await.code(), Some(0));
}
