//! `/oauth/disconnect`: where a person removes every connection made with their RunComfy key,
//! from any app, without the app's help. Typing the key is what proves it is theirs (its keyed
//! hash names their grants); the key is not checked upstream and not kept.

use std::collections::HashMap;

use axum::{extract::State, http::StatusCode, response::Response, Form};

use super::{page, OAuth};
use crate::runcomfy::ApiToken;

pub(super) async fn page(State(_oauth): State<OAuth>) -> Response {
    page::document(
        StatusCode::OK,
        "Disconnect",
        r#"<h1>Disconnect your apps</h1>
<p>This removes every connection made to this server with your RunComfy API key: the apps lose access at once, and the copy of your key kept for them is deleted.</p>
<form method="post" action="/oauth/disconnect">
<label for="api_key">Your RunComfy API key</label>
<input id="api_key" name="api_key" type="password" autocomplete="off" required>
<div class="buttons"><button type="submit">Disconnect everything</button></div>
</form>"#,
    )
}

pub(super) async fn disconnect(State(oauth): State<OAuth>, Form(form): Form<HashMap<String, String>>) -> Response {
    let Some(key) = form.get("api_key").cloned().and_then(ApiToken::new) else {
        return page::problem(StatusCode::BAD_REQUEST, "Enter your RunComfy API key.");
    };
    let owner = oauth.0.owners.owner_of(&key);
    match oauth.store(move |s| s.revoke_owner(&owner)).await {
        Ok(n) => {
            tracing::info!(connections = n, "a person disconnected their apps");
            page::document(
                StatusCode::OK,
                "Disconnected",
                &format!(
                    "<h1>Disconnected</h1><p>{n} connection{} removed. Apps that still want access must ask you again.</p>",
                    if n == 1 { "" } else { "s" }
                ),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "a disconnect could not be recorded");
            page::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "This server could not remove the connections just now. Try again in a minute.",
            )
        }
    }
}
