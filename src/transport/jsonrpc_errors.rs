//! The JSON-RPC error answers rmcp does not give, shared by every transport.
//!
//! JSON-RPC 2.0 (section 5.1) and MCP say: a message that is not JSON is answered `-32700`, one
//! that is JSON but not a valid request `-32600`, with the request's `id` when it can be read and
//! `null` when it cannot; a request for a known method whose params do not fit gets `-32602`.
//! MCP requires a request id to be a string or a number. rmcp reads a request with any other id
//! (`null`, a boolean, an object, an array) as a notification and leaves it unanswered, and a
//! known method whose params it cannot read as an unknown method (`-32601`); the transports use
//! [`unreadable`] and the handler [`invalid_params`] to answer those as the specification says.
//!
//! Error texts that quote what the client sent (serde's messages quote the offending value) are
//! cut to [`MAX_ECHO`] characters: a multi-megabyte value must not come back in the error.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use bytes::BytesMut;
use futures::StreamExt;
use rmcp::{
    model::{ClientJsonRpcMessage, CustomRequest, ErrorCode},
    ErrorData,
};
use serde_json::{json, Value};

use crate::text::ellipsis;

/// The longest text taken from a client's input into an error message, in characters.
pub(crate) const MAX_ECHO: usize = 200;

/// JSON-RPC's codes for what this module answers.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// The error answer (a whole JSON-RPC message) to `text`, which rmcp could not read as a client
/// message (`parsed` is its error): `None` when no answer is due (a notification, even an
/// unreadable one, is never answered).
pub(crate) fn unreadable(text: &[u8], parsed: &serde_json::Error) -> Option<Value> {
    let Ok(value) = serde_json::from_slice::<Value>(text) else {
        return Some(error(Value::Null, PARSE_ERROR, "Parse error: the message is not JSON"));
    };
    let Some(object) = value.as_object() else {
        let why = match value.is_array() {
            true => "Invalid request: a batch (a JSON array); MCP sends one message at a time",
            false => "Invalid request: a JSON-RPC message is a JSON object",
        };
        return Some(error(Value::Null, INVALID_REQUEST, why));
    };
    match object.get("id") {
        // A notification: no answer, whether or not it could be read.
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => {
            let message = format!("Invalid request: {}", ellipsis(&parsed.to_string(), MAX_ECHO));
            Some(error(id.clone(), INVALID_REQUEST, &message))
        }
        Some(_) => Some(error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid request: the id must be a string or a number",
        )),
    }
}

/// The answer to a request rmcp read as a custom one: `-32602` when its method is one MCP
/// defines (then it is only its params rmcp could not read), else `-32601`.
pub(crate) fn invalid_params(request: &CustomRequest) -> ErrorData {
    use rmcp::model::{
        CallToolRequestParams, CancelTaskParams, CompleteRequestParams, GetPromptRequestParams, GetTaskParams,
        InitializeRequestParams, PaginatedRequestParams, ReadResourceRequestParams, SubscribeRequestParams,
        UnsubscribeRequestParams, UpdateTaskParams,
    };
    fn check<P: serde::de::DeserializeOwned>(params: &Option<Value>) -> String {
        let params = params.clone().unwrap_or_else(|| json!({}));
        match serde_json::from_value::<P>(params) {
            Err(e) => ellipsis(&e.to_string(), MAX_ECHO),
            Ok(_) => "they do not fit the method".to_owned(),
        }
    }
    let params = &request.params;
    let why = match request.method.as_str() {
        "tools/call" => check::<CallToolRequestParams>(params),
        "resources/read" => check::<ReadResourceRequestParams>(params),
        "initialize" => check::<InitializeRequestParams>(params),
        "tasks/get" => check::<GetTaskParams>(params),
        "tasks/cancel" => check::<CancelTaskParams>(params),
        "tasks/update" => check::<UpdateTaskParams>(params),
        "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" => {
            check::<PaginatedRequestParams>(params)
        }
        "resources/subscribe" => check::<SubscribeRequestParams>(params),
        "resources/unsubscribe" => check::<UnsubscribeRequestParams>(params),
        "prompts/get" => check::<GetPromptRequestParams>(params),
        "completion/complete" => check::<CompleteRequestParams>(params),
        "ping" | "server/discover" => "they do not fit the method".to_owned(),
        other => return ErrorData::new(ErrorCode::METHOD_NOT_FOUND, ellipsis(other, MAX_ECHO), None),
    };
    ErrorData::invalid_params(format!("Invalid params for {}: {why}", request.method), None)
}

/// In front of rmcp's Streamable HTTP service: a POSTed JSON body rmcp cannot read as a client
/// message (it answers those 415, in plain text) is answered 400 with the JSON-RPC error the
/// specification gives. The body is read here (within `max_body_bytes`, as rmcp would) and handed
/// on whole, so that it is still at hand if rmcp refuses it.
pub(crate) async fn over_http(State(max_body_bytes): State<usize>, request: Request, next: Next) -> Response {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if request.method() != Method::POST || !is_json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body, max_body_bytes).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    // A JSON content type, so rmcp's 415 means it could not read the message.
    let Err(parsed) = serde_json::from_slice::<ClientJsonRpcMessage>(&body) else {
        return response;
    };
    let answer = unreadable(&body, &parsed).unwrap_or_else(|| {
        // A notification is never answered in JSON-RPC; over HTTP the status says it all.
        error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid request: a notification the server cannot read",
        )
    });
    tracing::debug!(id = %answer["id"], error = %parsed, "a message the server cannot read");
    (StatusCode::BAD_REQUEST, Json(answer)).into_response()
}

/// The whole body, or the answer to a body over the limit (rmcp's own words) or one that broke
/// off (a body too slow for the connection's floor is answered 408 by `connections` instead).
async fn read_body(body: Body, max: usize) -> Result<Bytes, Response> {
    let mut chunks = body.into_data_stream();
    let mut collected = BytesMut::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read request body: {e}"),
            )
                .into_response()
        })?;
        if chunk.len() > max.saturating_sub(collected.len()) {
            let message = format!("Payload Too Large: request body exceeds {max} bytes");
            return Err((StatusCode::PAYLOAD_TOO_LARGE, message).into_response());
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

/// A JSON-RPC error message.
fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ClientRequest, JsonRpcMessage};

    use super::*;

    #[test]
    fn a_request_whose_id_is_not_a_string_or_a_number_is_answered_with_a_null_id() {
        for id in ["null", "true", "{\"a\":1}", "[1]"] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            // rmcp cannot read it; nor does it say whether it was a request or a notification.
            let parsed = serde_json::from_str::<ClientJsonRpcMessage>(&line).unwrap_err();
            let answer = unreadable(line.as_bytes(), &parsed).unwrap();
            assert_eq!(answer["id"], Value::Null, "{line}");
            assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{line}");
        }
        let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":7}"#;
        let parsed = serde_json::from_str::<ClientJsonRpcMessage>(notification).unwrap_err();
        assert_eq!(unreadable(notification.as_bytes(), &parsed), None);
    }

    #[test]
    fn unreadable_messages_get_the_codes_json_rpc_gives_them() {
        let answer = |text: &str| {
            let parsed = serde_json::from_str::<ClientJsonRpcMessage>(text).unwrap_err();
            unreadable(text.as_bytes(), &parsed).unwrap()
        };
        assert_eq!(answer("not json")["error"]["code"], PARSE_ERROR);
        assert_eq!(answer("not json")["id"], Value::Null);
        assert_eq!(answer("[]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(answer("42")["error"]["code"], INVALID_REQUEST);
        let wrong_version = answer(r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#);
        assert_eq!(
            (wrong_version["id"].clone(), wrong_version["error"]["code"].clone()),
            (json!("a"), json!(INVALID_REQUEST))
        );
    }

    fn custom(line: &str) -> CustomRequest {
        match serde_json::from_str::<ClientJsonRpcMessage>(line).unwrap() {
            JsonRpcMessage::Request(request) => match request.request {
                ClientRequest::CustomRequest(custom) => custom,
                other => panic!("read as {other:?}"),
            },
            other => panic!("read as {other:?}"),
        }
    }

    #[test]
    fn wrong_params_of_a_known_method_are_invalid_params_and_their_echo_is_cut_short() {
        let huge = "u".repeat(4_000_000);
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":5}}"#.to_owned(),
            format!(r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"x","arguments":"{huge}"}}}}"#),
        ] {
            let error = invalid_params(&custom(&line));
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
            assert!(error.message.chars().count() < 300, "{}", error.message.len());
        }
        let unknown = invalid_params(&custom(r#"{"jsonrpc":"2.0","id":4,"method":"no/such","params":{}}"#));
        assert_eq!(unknown.code, ErrorCode::METHOD_NOT_FOUND);
    }
}
