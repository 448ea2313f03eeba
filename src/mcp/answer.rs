//! Tool answers: a success carries `structuredContent` (the tool's output type) and a readable text
//! copy for clients and models that ignore it; a failure is a [`ToolError`], an `isError` result
//! that says what was wrong and what to do next. Handlers return `Result<CallToolResult,
//! ToolError>`, so `?` turns any failure into its answer.

use rmcp::{
    handler::server::tool::IntoCallToolResult,
    model::{CallToolResponse, CallToolResult, ContentBlock},
    ErrorData,
};
use serde::Serialize;

use super::args::InvalidArgument;
use crate::{
    jobs::{PrepareError, SubmitError},
    runcomfy::{ApiError, RequestId},
};

/// The most text one answer carries, in bytes. Answers are bounded where they are built (outputs
/// listed up to a cap, the upstream's strings shortened); this is the backstop, so that nothing
/// that slipped through can flood a model's context.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// `text`, cut at [`MAX_TEXT_BYTES`] with a note saying so.
fn bounded(mut text: String) -> String {
    const CUT: &str = "\n… (cut here: an answer carries at most 256 KB of text)";
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT);
    text
}

/// A successful answer: `value` as `structuredContent`, `text` as its readable copy.
pub fn success<T: Serialize>(value: &T, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(bounded(text))]);
    // Serialising our own plain structs cannot fail; if it ever did, the text still carries it all.
    result.structured_content = serde_json::to_value(value).ok();
    result
}

/// An `isError` answer: the model sees it and can act on it (JSON-RPC errors are for protocol
/// faults only).
#[derive(Debug, Clone)]
pub struct ToolError(String);

impl ToolError {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// An upstream failure on a call about an existing job.
    pub fn api(id: &RequestId, e: &ApiError) -> Self {
        let retry = if e.is_retryable() {
            format!(" The job itself is unaffected: call again with request_id \"{id}\".")
        } else {
            String::new()
        };
        Self(format!("{e}{retry}"))
    }

    /// A submit that failed or was refused: says plainly whether a job may exist, because a
    /// second submit is a second payment.
    pub fn submit(e: &SubmitError) -> Self {
        if let SubmitError::Limit(text) = e {
            return Self(format!("{text}\nNo job was created and nothing was charged."));
        }
        if e.submit_fate_unknown() {
            // The error's own text says that a job may exist and what to do before paying again.
            return Self(e.to_string());
        }
        Self(format!("{e}\nNo job was created."))
    }

    /// What the answer says.
    pub fn text(&self) -> &str {
        &self.0
    }

    pub fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(bounded(self.0))])
    }
}

impl From<InvalidArgument> for ToolError {
    fn from(e: InvalidArgument) -> Self {
        Self(format!(
            "{e}\nNothing was sent to RunComfy; fix the argument and call again."
        ))
    }
}

/// A request that could not be prepared: nothing was submitted.
impl From<PrepareError> for ToolError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Input(e) => InvalidArgument::from(e).into(),
            PrepareError::Catalogue(text) => Self(format!("{text}\nNothing was submitted.")),
            PrepareError::Lookup { field, id, error } => Self(format!(
                "Invalid argument `{field}`: looking up job {id} at RunComfy, to use its image, failed: {error}\nNothing was submitted; call again in a moment."
            )),
        }
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        Ok(self.into_result().into())
    }
}

/// Either side of a handler's answer as the result to send.
pub fn settle(answer: Result<CallToolResult, ToolError>) -> CallToolResult {
    answer.unwrap_or_else(ToolError::into_result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_past_the_cap_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = bounded("é".repeat(MAX_TEXT_BYTES));
        assert!(long.len() <= MAX_TEXT_BYTES, "{}", long.len());
        assert!(long.ends_with("256 KB of text)"));
        let error = ToolError::new("x".repeat(10 * MAX_TEXT_BYTES)).into_result();
        assert!(error.content[0].as_text().unwrap().text.len() <= MAX_TEXT_BYTES);
    }
}
