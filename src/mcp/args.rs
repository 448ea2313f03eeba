//! Turning a tool call's JSON arguments into a typed, validated request, or into an error that
//! names the field, the rule and what would be accepted. rmcp's own `Parameters<T>` turns a serde
//! failure into a JSON-RPC error the model never sees, so the tools parse here instead.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::schema::{property_names, schema_for};
use crate::dreamina::InvalidArgument;

/// Rules beyond what serde checks (lengths, ranges).
pub trait Validate {
    fn validate(&self) -> Result<(), InvalidArgument>;
}

pub fn parse<T: DeserializeOwned + JsonSchema + Validate + 'static>(args: JsonObject) -> Result<T, InvalidArgument> {
    reject_unknown::<T>(&args)?;
    let parsed: T = serde_path_to_error::deserialize(serde_json::Value::Object(args)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        if field == "." {
            // A missing field: serde names it in the message ("missing field `prompt`").
            let missing = inner.split('`').nth(1).unwrap_or("arguments").to_owned();
            InvalidArgument::new(missing, format!("{inner}; it is required"))
        } else {
            InvalidArgument::new(field, inner)
        }
    })?;
    parsed.validate()?;
    Ok(parsed)
}

/// An argument the tool does not know is an error, not something to drop silently: the user
/// asked for something (`seed`, `negative_prompt`, a misspelt `scale`) and would not get it.
fn reject_unknown<T: JsonSchema + 'static>(args: &JsonObject) -> Result<(), InvalidArgument> {
    let known = property_names(&schema_for::<T>());
    match args.keys().find(|k| !known.contains(k)) {
        None => Ok(()),
        Some(unknown) => Err(InvalidArgument::new(
            unknown.clone(),
            format!(
                "is not an argument of this tool. Accepted arguments: {}",
                known.join(", ")
            ),
        )),
    }
}

impl Validate for crate::dreamina::ImageRequest {
    fn validate(&self) -> Result<(), InvalidArgument> {
        crate::dreamina::ImageRequest::validate(self)
    }
}

/// The argument of the tools that act on an existing job.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct JobArgs {
    /// The request_id that generate_image returned.
    pub request_id: crate::runcomfy::RequestId,
}

impl Validate for JobArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(()) // RequestId checks itself while deserialising.
    }
}
