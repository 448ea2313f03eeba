//! The HTTP server: one axum app on one port with Streamable HTTP at `/mcp` (rmcp's
//! `StreamableHttpService`, sessions on unless `--stateless`), the legacy 2024-11-05 transport at
//! `GET /sse` + `POST /message`, and `/healthz`; every route behind the same guards (Host/Origin,
//! bearer token, body size) and one session cap, with CORS for the origins the guards allow. Its
//! connections are bounded in number and time ([`connections`]). It shuts down gracefully on
//! SIGINT/SIGTERM.
//!
//! Each MCP session gets its own clone of the server handler; clones share the upstream client.

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Request, State},
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use futures::{future::BoxFuture, StreamExt};
use rmcp::{
    transport::{
        streamable_http_server::session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ServerHandler,
};
use tokio_util::sync::CancellationToken;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
};

use super::{
    apps_challenge,
    connections::{self, RESERVE},
    guards, jsonrpc_errors,
    legacy_sse::{self, LegacySse},
    per_user_keys,
    session_budget::{too_many_sessions, BudgetedSessions, SessionBudget},
    session_owners::{self, SessionOwners},
    settings::HttpSettings,
    shutdown::{self, InFlight},
};

/// The header carrying the Streamable HTTP session id.
const SESSION_HEADER: &str = "mcp-session-id";
/// After the grace period and closing every session, how long open connections get to wind down.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/healthz` reports beyond "the process answers": the shared database, when there is one
/// (`None`: there is none; `Err`: why it cannot be reached, for the log).
pub type DatabaseHealth = Arc<dyn Fn() -> BoxFuture<'static, Option<Result<(), String>>> + Send + Sync>;

/// The whole app. `shutdown` ends every session when cancelled; `in_flight` counts requests
/// being answered.
pub fn app<S>(
    server: S,
    settings: &HttpSettings,
    database: DatabaseHealth,
    shutdown: CancellationToken,
    in_flight: InFlight,
) -> Router
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let budget = SessionBudget::new(settings.max_sessions);
    let owners = SessionOwners::default();

    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(settings.session_idle);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!settings.stateless)
        // Stateless answers have no stream to resume, so a call that sends nothing before its
        // result is answered as plain JSON (what load balancers and simple clients handle
        // best); one that reports progress still gets an SSE stream.
        .with_json_response(settings.stateless)
        .with_cancellation_token(shutdown.child_token())
        .with_max_request_body_bytes(settings.max_body_bytes)
        // Host and Origin are checked by our guard for every route, with the same rules.
        .disable_allowed_hosts();
    let streamable = {
        let server = server.clone();
        StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(BudgetedSessions::new(sessions, budget.clone(), owners.clone())),
            config,
        )
    };
    let admission = Admission {
        budget: budget.clone(),
        in_flight: in_flight.clone(),
        stateless: settings.stateless,
    };
    let mut mcp = Router::new()
        .route_service("/mcp", streamable)
        .layer(middleware::from_fn_with_state(
            settings.max_body_bytes,
            jsonrpc_errors::over_http,
        ))
        .layer(middleware::from_fn_with_state(admission, admit));

    let mut legacy = legacy_sse::router(LegacySse {
        server,
        budget,
        idle_timeout: settings.session_idle,
        shutdown,
        in_flight,
    });
    // Every MCP route needs the caller's key (a 401 before anything else); /healthz does not.
    if let Some(keys) = &settings.per_user_keys {
        // Each session to its caller (identify, outside this layer, has found the caller).
        if !settings.stateless {
            mcp = mcp.layer(middleware::from_fn_with_state(owners.clone(), session_owners::check));
        }
        mcp = mcp.layer(middleware::from_fn_with_state(keys.clone(), per_user_keys::identify));
        legacy = legacy.layer(middleware::from_fn_with_state(keys.clone(), per_user_keys::identify));
    }
    // With OAuth sign-in the same, from each request's access token; its own routes are open.
    let mut sign_in = Router::new();
    if let Some(oauth) = &settings.oauth {
        if !settings.stateless {
            mcp = mcp.layer(middleware::from_fn_with_state(owners.clone(), session_owners::check));
        }
        mcp = mcp.layer(middleware::from_fn_with_state(oauth.clone(), crate::oauth::identify));
        legacy = legacy.layer(middleware::from_fn_with_state(oauth.clone(), crate::oauth::identify));
        sign_in = crate::oauth::router(oauth.clone());
    }
    if let Some(company) = &settings.company {
        if !settings.stateless {
            mcp = mcp.layer(middleware::from_fn_with_state(owners.clone(), session_owners::check));
        }
        mcp = mcp.layer(middleware::from_fn_with_state(
            company.clone(),
            crate::oauth::company::identify,
        ));
        legacy = legacy.layer(middleware::from_fn_with_state(
            company.clone(),
            crate::oauth::company::identify,
        ));
        sign_in = crate::oauth::company::router(company.clone());
    }

    // rmcp enforces the body limit on /mcp itself (413, streamed bodies included); wrapping it
    // in tower-http's limit too would turn a streamed oversized body into rmcp's 500. The other
    // routes get tower-http's, replacing axum's default (2 MB, extractors only).
    let others = Router::new()
        .route("/", get(front_page))
        .route("/healthz", get(move || healthz(database.clone())))
        .merge(legacy)
        .merge(sign_in)
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes));

    let guards = Arc::new(settings.guards.clone());
    Router::new()
        .merge(mcp)
        .merge(others)
        .merge(apps_challenge::router(settings.openai_apps_challenge.clone()))
        // A request that fails the guards is answered before its body is read.
        .layer(middleware::from_fn_with_state(guards.clone(), guards::guard))
        .layer(cors(guards))
        .layer(middleware::map_response(close_after_refused_body))
}

/// `ok`, and with a shared database its state: a replica that cannot reach it answers 503, so
/// that a load balancer sends its calls to one that can (without the database, spend limits
/// refuse every submit and list_jobs has nothing to list). The reason goes to the log only.
async fn healthz(database: DatabaseHealth) -> Response {
    match database().await {
        None => "ok".into_response(),
        Some(Ok(())) => "ok\ndatabase: ok\n".into_response(),
        Some(Err(reason)) => {
            tracing::warn!(%reason, "/healthz: the journal database is unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable\ndatabase: unreachable\n").into_response()
        }
    }
}

/// A person who opens the server's address in a browser (or pastes it into a client) learns
/// where the MCP endpoint is, instead of an empty 404.
async fn front_page(headers: axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("HOST:PORT");
    format!(
        "runcomfy-mcp {} serves MCP here, at /mcp: point your MCP client at http://{host}/mcp (Streamable HTTP).\nOlder clients of the 2024-11-05 protocol use http://{host}/sse. /healthz answers ok while the server is up.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// A 413 goes out before the body has been read to its end, so the connection cannot carry
/// another request. Without saying so, a client may reuse it and see its next request cut off
/// (seen in CI: reqwest's pool, `IncompleteMessage`).
async fn close_after_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Web clients (a browser page such as the MCP Inspector connecting directly) can only read an
/// answer, and the session id header, with CORS; only origins the guards allow get it. Outside
/// the guards because a browser's preflight never carries the bearer token: it is answered here,
/// and the request that follows it goes through the guards like any other.
fn cors(guards: Arc<guards::Guards>) -> CorsLayer {
    let session = HeaderName::from_static(SESSION_HEADER);
    let protocol = HeaderName::from_static("mcp-protocol-version");
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| guards.origin_allowed(origin)))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::AUTHORIZATION,
            HeaderName::from_static(per_user_keys::KEY_HEADER),
            HeaderName::from_static("last-event-id"),
            session.clone(),
            protocol.clone(),
        ])
        .expose_headers([session, protocol, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600))
}

/// Listens, prints the MCP endpoint's URL on stdout (stdout is not a protocol channel here), and serves
/// until SIGINT/SIGTERM, then shuts down gracefully.
pub async fn serve<S>(server: S, settings: HttpSettings, database: DatabaseHealth) -> anyhow::Result<()>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    let base = format!("http://{}", listener.local_addr()?);
    if let Some(oauth) = &settings.oauth {
        oauth.listening_at(&base);
    }
    if let Some(company) = &settings.company {
        company.listening_at(&base);
    }
    // The endpoint a client is given, not the bare address (whose `/` only points here).
    let _ = writeln!(std::io::stdout(), "{base}/mcp");
    tracing::info!(
        streamable_http = %format!("{base}/mcp"),
        legacy_sse = %format!("{base}/sse"),
        stateless = settings.stateless,
        auth = settings.guards.token.is_some(),
        per_user_keys = settings.per_user_keys.is_some(),
        "listening over HTTP; Ctrl-C to stop"
    );

    let shutdown = CancellationToken::new();
    let in_flight = InFlight::new();
    let app = app(server, &settings, database, shutdown.clone(), in_flight.clone());
    let stop_accepting = CancellationToken::new();
    let limits = descriptor_checked(settings.connections);
    let mut http = tokio::spawn(connections::serve(listener, app, limits, stop_accepting.clone()));

    let signal = tokio::select! {
        signal = shutdown::signal() => signal,
        ended = &mut http => {
            ended.context("HTTP server task")?;
            anyhow::bail!("the HTTP server stopped accepting connections");
        }
    };
    tracing::info!(
        signal,
        in_flight = in_flight.count(),
        grace_secs = settings.shutdown_grace.as_secs(),
        "shutting down: refusing new connections, letting calls in flight finish"
    );
    stop_accepting.cancel();
    if !in_flight.drain(settings.shutdown_grace).await {
        tracing::warn!(
            still_running = in_flight.count(),
            "grace period over; cutting off the calls still running"
        );
    }
    shutdown.cancel();
    match tokio::time::timeout(CLOSE_TIMEOUT, http).await {
        Ok(ended) => ended.context("HTTP server task")?,
        Err(_) => tracing::warn!("some connections did not close in time; exiting anyway"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Descriptors the process needs besides its client connections: the listener, stdio, the
/// journal, upstream connections (64 at most) and downloads with their spool files.
const OTHER_DESCRIPTORS: u64 = 192;

/// The limits, with the cap lowered (and a warning) if the open-file limit cannot hold it even
/// after raising it: past the limit, accepting fails and clients are refused at random.
fn descriptor_checked(mut limits: connections::ConnectionLimits) -> connections::ConnectionLimits {
    let wanted = (limits.max + RESERVE) as u64 + OTHER_DESCRIPTORS;
    let available = connections::ensure_descriptors(wanted);
    if available < wanted {
        let fits = available.saturating_sub(OTHER_DESCRIPTORS + RESERVE as u64).max(1) as usize;
        tracing::warn!(
            max_connections = limits.max,
            open_file_limit = available,
            lowered_to = fits,
            "the open-file limit (ulimit -n) cannot hold --max-connections; lowering the cap"
        );
        limits.max = fits;
    }
    limits
}

/// rmcp answers a session's `DELETE` with 202 Accepted, but the session is already gone by then
/// and the clients expect 200 or 204: the official Python client logs "Session termination
/// failed: 202" for every session it closes. Said as 204 No Content; other answers (404 for an
/// unknown session, 405 in stateless mode) pass unchanged.
fn session_closed(response: Response) -> Response {
    if response.status() != StatusCode::ACCEPTED {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.status = StatusCode::NO_CONTENT;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::empty())
}

#[derive(Clone)]
struct Admission {
    budget: SessionBudget,
    in_flight: InFlight,
    stateless: bool,
}

/// In front of `/mcp`: turns away a new session when the cap is reached (rmcp alone would answer
/// 500), and counts each POST as in flight until its response body has been sent.
async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    if request.method() == Method::DELETE {
        return session_closed(next.run(request).await);
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let opens_session = !admission.stateless && !request.headers().contains_key(SESSION_HEADER);
    if opens_session && admission.budget.is_full() {
        return too_many_sessions(admission.budget.max());
    }
    let guard = admission.in_flight.start();
    let response = next.run(request).await;
    if response.status() == StatusCode::ACCEPTED {
        return response.into_response();
    }
    // The answer to a call may be a stream (progress, then the result): the request is in
    // flight until that stream is finished or dropped.
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _ = &guard;
        chunk
    }));
    Response::from_parts(parts, body)
}
