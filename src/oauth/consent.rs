//! `POST /oauth/authorize`: the person's answer on the consent page. Taken only with its
//! anti-forgery value ([`super::pending`]); a "deny" goes back to the client as `access_denied`.
//! An "allow" needs a RunComfy key that RunComfy itself accepts — checked with one catalogue
//! read with that key, the cheapest authenticated read there is, and nothing paid — and limits
//! and a confirm threshold within the operator's. Then the key is sealed into a new grant with a one-time code, and the
//! browser goes back to the client with the code, its `state` and `iss`.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    Form,
};
use serde::Deserialize;

use super::{
    authorize::{error_redirect, redirect_with},
    now, page,
    pending::{cookie_value, Pending},
    seconds, secrets,
    store::{Code, Grant},
    OAuth, CODE_TTL,
};
use crate::runcomfy::{ApiError, ApiToken};

/// Grants never redeemed are forgotten after this.
const UNREDEEMED_GRANT_SECS: i64 = 3600;

/// The form as posted. No `Debug`: it holds the key.
#[derive(Deserialize)]
pub(super) struct ConsentForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    max_spend_usd_per_day: String,
    #[serde(default)]
    max_jobs_per_hour: String,
    #[serde(default)]
    confirm_above_usd: String,
    #[serde(default)]
    decision: String,
}

pub(super) async fn answer(State(oauth): State<OAuth>, headers: HeaderMap, Form(form): Form<ConsentForm>) -> Response {
    let Some(pending) = Pending::open(&oauth, &form.request) else {
        return page::problem(
            StatusCode::BAD_REQUEST,
            "This sign-in page is too old or was changed. Go back to your app and start connecting again.",
        );
    };
    let cookie = cookie_value(&headers);
    let genuine = form.csrf.as_deref().is_some_and(|v| v == pending.csrf) && cookie.as_deref() == Some(&pending.csrf);
    if !genuine {
        tracing::warn!(client = %pending.client_id, "consent refused: the form came without its anti-forgery value");
        return page::problem(
            StatusCode::FORBIDDEN,
            "This answer did not come from the sign-in page this server showed you (its anti-forgery value is missing or wrong). Nothing was granted. Go back to your app and start connecting again.",
        );
    }
    if form.decision != "allow" {
        return error_redirect(
            &oauth,
            &pending.redirect_uri,
            pending.state.as_deref(),
            "access_denied",
            "the person denied the request",
        );
    }
    let entered = page::Entered {
        spend: form.max_spend_usd_per_day.clone(),
        jobs: form.max_jobs_per_hour.clone(),
        confirm: form.confirm_above_usd.clone(),
    };
    let again = |status: StatusCode, error: &str| page::consent(&oauth, &pending, Some(error), Some(&entered), status);
    let limits = match page::chosen_limits(oauth.0.operator_limits, &entered) {
        Ok(limits) => limits,
        Err(why) => return again(StatusCode::BAD_REQUEST, &why),
    };
    let confirm_above_usd = match page::chosen_confirm(oauth.0.operator_confirm_above_usd, &entered.confirm) {
        Ok(usd) => usd,
        Err(why) => return again(StatusCode::BAD_REQUEST, &why),
    };
    let Some(key) = ApiToken::new(form.api_key) else {
        return again(StatusCode::BAD_REQUEST, "Enter your RunComfy API key.");
    };
    if let Err((status, why)) = check_key(&oauth, &key).await {
        return again(status, &why);
    }

    let grant_id = secrets::new_secret("");
    let code = secrets::new_secret(secrets::CODE_PREFIX);
    let grant = Grant {
        owner: oauth.0.owners.owner_of(&key),
        sealed_key: oauth.0.seal.seal(key.expose().as_bytes(), &grant_id),
        grant_id: grant_id.clone(),
        client_id: pending.client_id.clone(),
        resource: pending.resource.clone(),
        limits,
        confirm_above_usd,
    };
    let stored = Code {
        code_hash: secrets::stored(&code),
        grant_id,
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        expires_at: now() + seconds(CODE_TTL),
    };
    let saved = oauth
        .store(move |s| {
            let now = now();
            s.begin_grant(&grant, &stored, now)?;
            s.prune(now, now - UNREDEEMED_GRANT_SECS)
        })
        .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "a grant could not be saved");
        return again(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server could not save the connection just now. Try again in a minute.",
        );
    }
    tracing::info!(client = %pending.client_id, "a person connected a client with their RunComfy key");
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = pending.state.as_deref() {
        params.push(("state", state));
    }
    redirect_with(&oauth, &pending.redirect_uri, &params)
}

/// Whether RunComfy takes `key`: one read of the server's model's catalogue entry with it.
/// `Err`: the status and what the person is told.
async fn check_key(oauth: &OAuth, key: &ApiToken) -> Result<(), (StatusCode, String)> {
    let upstream = &oauth.0.upstream;
    match upstream.model_info(Some(key), upstream.model()).await {
        // A model RunComfy does not know still took the key to say so.
        Ok(_) | Err(ApiError::ModelNotFound { .. }) => Ok(()),
        Err(ApiError::KeyRejected { .. } | ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }) => {
            tracing::info!("consent refused: RunComfy rejected the key given");
            Err((
                StatusCode::BAD_REQUEST,
                "RunComfy did not accept this API key: it may be mistyped, expired or revoked. Copy it again from the RunComfy dashboard (API Keys).".to_owned(),
            ))
        }
        Err(e) => {
            tracing::warn!(kind = e.kind(), "consent: the key could not be checked with RunComfy");
            Err((
                StatusCode::BAD_GATEWAY,
                "RunComfy could not be reached to check your key just now. Nothing was saved; try again in a minute."
                    .to_owned(),
            ))
        }
    }
}
