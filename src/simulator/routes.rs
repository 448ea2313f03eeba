//! URLs and handlers: the RunComfy API endpoints and the `/__sim/` control API.
//!
//! Each API handler counts the call, lets [`faults::apply`] decide whether the real endpoint
//! runs, and keeps the endpoint itself a plain function of the shared state. Order inside an
//! endpoint follows the upstream: authentication, then the model id, then input validation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::billing;
use super::catalogue;
use super::edit;
use super::faults::{self, FaultEndpoint, FaultRule};
use super::input::{self, Endpoint, EDIT_MODEL_ID, MODEL_ID};
use super::state::{CancelOutcome, Job, Media, Phase};
use super::wire::{self, CancelResponse, Output, ResultResponse, StatusResponse, SubmitResponse};
use super::{mp4, plan, schema, wav};
use super::{Shared, SimConfig};

type Sim = State<Arc<Shared>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // RunComfy takes submit bodies of up to 64 MiB (reference images as data URIs).
        .route(
            "/v1/models/{*model}",
            post(submit).layer(DefaultBodyLimit::max(64 * 1024 * 1024)).get(model),
        )
        .route("/v1/models", get(list_models))
        .route("/v1/models/categories", get(model_categories))
        .route("/v1/requests/{id}/status", get(status))
        .route("/v1/requests/{id}/result", get(result))
        .route("/v1/requests/{id}/cancel", post(cancel))
        .route("/files/{id}/{file}", get(image))
        // The account API's balance, served here too (RunComfy has it on another host).
        .route("/prod/v2/balance", get(balance))
        .route("/__sim/config", put(put_config).get(get_config))
        .route("/__sim/stats", get(get_stats))
        .route("/__sim/jobs", get(list_jobs))
        .route("/__sim/tokens", get(list_tokens))
        .route("/__sim/jobs/{id}", get(get_job))
        .route("/__sim/faults", post(add_fault).delete(clear_faults).get(list_faults))
        .with_state(shared)
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

// ---- RunComfy API ----

async fn submit(State(sim): Sim, Path(model): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    count(&sim.counters.submissions);
    let fault = sim.faults.take(FaultEndpoint::Submit);
    faults::apply(fault, async { submit_now(&sim, &model, &headers, &body) }).await
}

fn submit_now(sim: &Shared, model: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    if !authorized(sim, headers) {
        return wire::unauthorized();
    }
    let model = model.trim_start_matches('/');
    let job = match model {
        MODEL_ID => dreamina_job(sim, model, Endpoint::TextToImage, body),
        EDIT_MODEL_ID => dreamina_job(sim, model, Endpoint::Edit, body),
        _ => match catalogue::find(model) {
            Some(entry) => catalogue_job(sim, model, entry, body),
            None => {
                tracing::debug!(model, "simulator: unknown model");
                return wire::error(
                    StatusCode::BAD_REQUEST,
                    400001,
                    &format!("Model '{model}' not found; GET /v1/models lists the models this simulator serves"),
                );
            }
        },
    };
    let job = match job {
        Ok(job) => job,
        Err(detail) => {
            tracing::debug!(?detail, "simulator: submit rejected");
            return wire::validation_failed(detail);
        }
    };
    let id = wire::new_request_id();
    // Charged last, as upstream: a submit refused for its input costs nothing.
    let at_completion = sim.config().bill_at_completion;
    let paid = if at_completion {
        billing::settle(sim);
        billing::can_pay(sim, job.cost_usd)
    } else {
        billing::charge(sim, job.cost_usd)
    };
    if let Err(balance) = paid {
        tracing::debug!(cost = job.cost_usd, balance, "simulator: balance too low");
        return billing::payment_required(balance, job.cost_usd);
    }
    if at_completion {
        billing::owe(sim, &id, job.cost_usd);
    }
    sim.jobs.insert(id.clone(), job);
    note_token(sim, "submit", &id, headers);
    count(&sim.counters.accepted);
    // Per-request lines are debug: at info, logging would cost more than answering.
    tracing::debug!(request_id = %id, model, "simulator: job submitted");
    let url = |what: &str| format!("{}/v1/requests/{id}/{what}", sim.base_url);
    Json(SubmitResponse {
        status_url: url("status"),
        result_url: url("result"),
        cancel_url: url("cancel"),
        request_id: id,
    })
    .into_response()
}

async fn balance(State(sim): Sim, headers: HeaderMap) -> Response {
    if !authorized(&sim, &headers) {
        return wire::unauthorized();
    }
    note_token(&sim, "balance", "", &headers);
    Json(billing::balance(&sim)).into_response()
}

/// A Dreamina job, its input judged by the hand-written rules and priced per image. The edit
/// endpoint also refuses keys its schema does not declare, all problems reported at once.
fn dreamina_job(sim: &Shared, model: &str, endpoint: Endpoint, body: &[u8]) -> Result<Job, Vec<input::Violation>> {
    let extra = match endpoint {
        Endpoint::Edit => edit::undeclared(model, body),
        Endpoint::TextToImage => Vec::new(),
    };
    let (request, valid) = match input::validate_for(endpoint, body) {
        Ok(valid) if extra.is_empty() => valid,
        Ok(_) => return Err(extra),
        Err(mut violations) => {
            violations.extend(extra);
            return Err(violations);
        }
    };
    let config = sim.config();
    let images = if valid.force_single { 1 } else { config.images_per_job };
    Ok(Job::new(
        model,
        request,
        valid.images,
        (valid.width, valid.height),
        images,
        &config,
    ))
}

/// Any other catalogue model's job, its input judged by the entry's schema and priced as the
/// entry says.
fn catalogue_job(sim: &Shared, model: &str, entry: &Value, body: &[u8]) -> Result<Job, Vec<input::Violation>> {
    let request = schema::validate(model, body)?;
    let plan = plan::plan(entry, &request);
    let job = Job::new(model, request, Vec::new(), plan.size, plan::OUTPUTS, &sim.config());
    Ok(job.making(plan.media, plan.cost_usd))
}

async fn status(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    count(&sim.counters.status_calls);
    let fault = sim.faults.take(FaultEndpoint::Status);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "status", &id, &headers);
        billing::settle(&sim);
        let Some(phase) = sim.jobs.status(&id) else {
            return wire::not_found();
        };
        let queue_position = match phase {
            Phase::InQueue { position } => Some(position),
            _ => None,
        };
        let url = |what: &str| format!("{}/v1/requests/{id}/{what}", sim.base_url);
        Json(StatusResponse {
            status_url: url("status"),
            result_url: url("result"),
            request_id: id.clone(),
            status: phase.status_str(),
            queue_position,
        })
        .into_response()
    })
    .await
}

/// A model's catalogue entry, with its price and input schema.
async fn model(State(sim): Sim, Path(model): Path<String>, headers: HeaderMap) -> Response {
    count(&sim.counters.model_calls);
    let fault = sim.faults.take(FaultEndpoint::Model);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "model", model.trim_start_matches('/'), &headers);
        catalogue::describe(&sim, model.trim_start_matches('/'))
    })
    .await
}

/// The catalogue, searched and paged.
async fn list_models(State(sim): Sim, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    count(&sim.counters.model_calls);
    let fault = sim.faults.take(FaultEndpoint::Model);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "models", query.as_deref().unwrap_or_default(), &headers);
        catalogue::list(&sim, query.as_deref())
    })
    .await
}

async fn model_categories(State(sim): Sim, headers: HeaderMap) -> Response {
    count(&sim.counters.model_calls);
    let fault = sim.faults.take(FaultEndpoint::Model);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "categories", "", &headers);
        catalogue::categories()
    })
    .await
}

async fn result(State(sim): Sim, Path(id): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let include_cost = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|pair| pair == "include_cost=true"));
    count(&sim.counters.result_calls);
    let fault = sim.faults.take(FaultEndpoint::Result);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "result", &id, &headers);
        billing::settle(&sim);
        let Some(job) = sim.jobs.get(&id) else {
            return wire::not_found();
        };
        let mut answer = ResultResponse {
            request_id: id.clone(),
            status: job.phase().status_str(),
            output: None,
            created_at: None,
            finished_at: None,
            // A cancelled job was refunded; one still going has no final cost yet.
            cost: match job.phase() {
                Phase::Completed { .. } => Some(job.cost_usd),
                Phase::Cancelled => Some(0.0),
                _ => None,
            }
            .filter(|_| include_cost),
        };
        if let Phase::Completed { finished_at } = job.phase() {
            // `/status` says "completed"; `/result` says "succeeded", as upstream does.
            answer.status = "succeeded";
            let file = |n: u32| format!("{}/files/{id}/{n}.{}", sim.base_url, job.media.extension());
            answer.output = Some(match job.media {
                Media::Image => Output::Images {
                    images: (0..job.images).map(file).collect(),
                },
                Media::Video => Output::Video { video: file(0) },
                Media::Audio { .. } => Output::Audio { audio: file(0) },
            });
            answer.created_at = Some(wire::rfc3339(job.created_at));
            answer.finished_at = Some(wire::rfc3339(finished_at));
        }
        Json(answer).into_response()
    })
    .await
}

async fn cancel(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    count(&sim.counters.cancel_calls);
    let fault = sim.faults.take(FaultEndpoint::Cancel);
    faults::apply(fault, async {
        if !authorized(&sim, &headers) {
            return wire::unauthorized();
        }
        note_token(&sim, "cancel", &id, &headers);
        let (status, outcome) = match sim.jobs.cancel(&id) {
            None => return wire::not_found(),
            Some(CancelOutcome::Cancelled) => {
                // A job billed at completion was never charged: nothing to give back.
                if let (false, Some(job)) = (billing::forgive(&sim, &id), sim.jobs.get(&id)) {
                    billing::refund(&sim, job.cost_usd);
                }
                ("cancelled", "cancelled")
            }
            Some(CancelOutcome::NotCancellable(phase)) => (phase.status_str(), "not_cancellable"),
        };
        tracing::debug!(request_id = %id, outcome, "simulator: cancel");
        let body = CancelResponse {
            request_id: id.clone(),
            status,
            outcome,
        };
        (StatusCode::ACCEPTED, Json(body)).into_response()
    })
    .await
}

/// Result files; no token needed, like upstream's hosted result URLs.
async fn image(State(sim): Sim, Path((id, file)): Path<(String, String)>) -> Response {
    count(&sim.counters.image_calls);
    let fault = sim.faults.take(FaultEndpoint::Image);
    faults::apply(fault, async {
        let Some(job) = sim.jobs.get(&id) else {
            return wire::not_found();
        };
        let Some(n) = job.output_index(&file) else {
            return wire::not_found();
        };
        let bytes = match job.media {
            Media::Video => Ok(Bytes::from_static(mp4::CLIP)),
            Media::Audio { millis } => Ok(wav::render(millis)),
            Media::Image if job.references.is_empty() => {
                let caption = job.caption(&id, n);
                sim.images
                    .get((job.width, job.height), sim.config().image_style, caption)
                    .await
            }
            Media::Image => edit::drawn(&sim, &id, &job).await.map(|drawn| drawn.png),
        };
        match bytes {
            Ok(bytes) => ([(header::CONTENT_TYPE, job.media.content_type())], bytes).into_response(),
            Err(error) => {
                tracing::error!(%error, "simulator: cannot render image");
                wire::error(StatusCode::INTERNAL_SERVER_ERROR, 500001, "render failed")
            }
        }
    })
    .await
}

/// Bearer token check: any non-empty token, or exactly `required_token` when set; never one of
/// `rejected_tokens`.
fn authorized(sim: &Shared, headers: &HeaderMap) -> bool {
    let token = bearer(headers);
    // Compared under the lock: cloning the whole config on every request is what it would cost.
    let config = sim.config.lock().unwrap_or_else(|p| p.into_inner());
    match (token, config.required_token.as_deref()) {
        (None, _) => false,
        (Some(given), _) if config.rejected_tokens.iter().any(|r| r == given) => false,
        (Some(_), None) => true,
        (Some(given), Some(required)) => given == required,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Keeps which token `call` on `subject` used, when `record_tokens` is on (never logged).
fn note_token(sim: &Shared, call: &str, subject: &str, headers: &HeaderMap) {
    if !sim.record_tokens.load(Ordering::Relaxed) {
        return;
    }
    let token = bearer(headers).unwrap_or_default().to_owned();
    let mut tokens = sim.tokens.lock().unwrap_or_else(|p| p.into_inner());
    tokens.push(super::TokenUse {
        call: call.to_owned(),
        subject: subject.to_owned(),
        token,
    });
}

// ---- control API (no auth: tests only, on loopback) ----

/// Merges a partial config into the current one, so `{"run_ms": 50}` changes only `run_ms`.
async fn put_config(State(sim): Sim, Json(patch): Json<Value>) -> Response {
    let mut merged = match serde_json::to_value(sim.config()) {
        Ok(Value::Object(map)) => map,
        _ => return control_error("cannot serialize config"),
    };
    let Value::Object(patch) = patch else {
        return control_error("expected a JSON object");
    };
    for (key, value) in patch {
        if !merged.contains_key(&key) {
            return control_error(&format!("unknown config field '{key}'"));
        }
        merged.insert(key, value);
    }
    match serde_json::from_value::<SimConfig>(Value::Object(merged)) {
        Ok(config) => {
            // Tokens are the tests' secrets: never in a log line.
            let mut shown = config.clone();
            shown.required_token = shown.required_token.map(|_| "<redacted>".to_owned());
            shown.rejected_tokens = vec!["<redacted>".to_owned(); shown.rejected_tokens.len()];
            tracing::info!(config = ?shown, "simulator: config changed");
            sim.set_config(config.clone());
            Json(config).into_response()
        }
        Err(error) => control_error(&error.to_string()),
    }
}

async fn get_config(State(sim): Sim) -> Response {
    // The balance as of now: jobs billed at completion that have completed are charged.
    billing::settle(&sim);
    Json(sim.config()).into_response()
}

async fn get_stats(State(sim): Sim) -> Response {
    Json(sim.counters.snapshot()).into_response()
}

async fn list_jobs(State(sim): Sim) -> Response {
    let jobs: Vec<Value> = sim
        .jobs
        .list()
        .into_iter()
        .map(|(id, status)| json!({ "request_id": id, "status": status }))
        .collect();
    Json(jobs).into_response()
}

async fn list_tokens(State(sim): Sim) -> Response {
    Json(sim.tokens.lock().unwrap_or_else(|p| p.into_inner()).clone()).into_response()
}

async fn get_job(State(sim): Sim, Path(id): Path<String>) -> Response {
    match sim.jobs.get(&id) {
        Some(job) => {
            let mut answer = json!({
                "model": &*job.model,
                "status": job.phase().status_str(),
                "request": &*job.request,
                "status_calls": job.status_calls,
            });
            if !job.references.is_empty() {
                answer["inputs"] = job.references.iter().map(input::Reference::summary).collect();
                // Which reference its outputs were drawn from, once drawn (null: none was readable).
                if let Some(from) = sim.edits.drawn_from(&id) {
                    answer["drawn_from"] = json!(from);
                }
            }
            Json(answer).into_response()
        }
        None => wire::not_found(),
    }
}

async fn add_fault(State(sim): Sim, Json(rule): Json<FaultRule>) -> Response {
    if rule.times == 0 {
        return control_error("times must be at least 1");
    }
    tracing::info!(?rule, "simulator: fault added");
    let count = sim.faults.add(rule);
    Json(json!({ "faults": count })).into_response()
}

async fn clear_faults(State(sim): Sim) -> Response {
    Json(json!({ "cleared": sim.faults.clear() })).into_response()
}

async fn list_faults(State(sim): Sim) -> Response {
    Json(json!({ "faults": sim.faults.list() })).into_response()
}

fn control_error(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}
