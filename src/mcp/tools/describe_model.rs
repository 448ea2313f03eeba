//! `describe_model`: one model's description, price and input schema, made provider-safe.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, Validate},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    list_models::{kind_text, price_text},
    Audience, ToolUnit,
};
use crate::{jobs::Caller, models::safe_schema::provider_safe, runcomfy::MAX_ID_CHARS};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeModelArgs {
    /// The model's id, as list_models gives it, e.g. bytedance/seedream-4-0/edit.
    // Bounded before any work: the closest-id search compares the id with every model's.
    #[schemars(length(max = MAX_ID_CHARS), regex(pattern = crate::schema_check::NOT_BLANK))]
    pub model_id: String,
}

impl Validate for DescribeModelArgs {}

/// A key of the schema renamed to be provider-safe.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Renamed {
    /// The name to use in run_model's input.
    pub key: String,
    /// RunComfy's own name for it (it is sent under this name).
    pub runcomfy_key: String,
}

/// `describe_model`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelDescription {
    pub model_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub categories: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_note: Option<String>,
    /// The JSON Schema run_model's input must meet.
    pub input_schema: Value,
    /// Keys renamed from RunComfy's schema; both names are accepted.
    pub renamed_keys: Vec<Renamed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_url: Option<String>,
    pub next_step: String,
}

/// What the router, the app view and the tasks path know of `describe_model`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::describe_model_router,
    audience: Audience::Model,
    images: false,
    task: None,
};

#[tool_router(router = describe_model_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "describe_model",
        title = "Describe a RunComfy model",
        description = "A RunComfy model's description, price and input schema (from list_models' model_id): what run_model's input for it must be. An unknown id is answered with the closest ids. Costs nothing.",
        input_schema = schema_for::<DescribeModelArgs>(),
        output_schema = output_schema_for::<ModelDescription>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn describe_model(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let args: DescribeModelArgs = args::parse(arguments)?;
        let model = self
            .jobs
            .catalogue()
            .describe(caller.key(), &args.model_id)
            .await
            .map_err(|e| ToolError::new(e.to_string()))?;
        let raw = model
            .input_schema
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let safe = provider_safe(&raw);
        let id = model.model_id.clone().unwrap_or_default();
        let described = ModelDescription {
            name: model.display_name.clone().unwrap_or_else(|| id.clone()),
            description: model.description.clone(),
            kind: kind_text(&model),
            categories: model.categories.clone(),
            price: price_text(&model),
            pricing_note: model.pricing_note.clone(),
            input_schema: safe.schema,
            renamed_keys: safe
                .renamed
                .into_iter()
                .map(|(key, runcomfy_key)| Renamed { key, runcomfy_key })
                .collect(),
            model_url: model.model_url.clone(),
            next_step: format!(
                "run_model with model_id \"{id}\" and an input that meets input_schema runs it (a paid job).{}",
                if safe.references_kept {
                    " input_schema keeps RunComfy's $ref references into its $defs: inlined, it would be too large."
                } else {
                    ""
                }
            ),
            model_id: id,
        };
        let renamed: Vec<String> = described
            .renamed_keys
            .iter()
            .map(|r| format!("{} (RunComfy's {})", r.key, r.runcomfy_key))
            .collect();
        let text = format!(
            "{} — {}{}\nKind: {}. Price: {}.{}\nInput schema: {}{}\nNext: {}",
            described.model_id,
            described.name,
            described
                .description
                .as_deref()
                .map(|d| format!("\n{d}"))
                .unwrap_or_default(),
            described.kind.as_deref().unwrap_or("unknown"),
            described.price.as_deref().unwrap_or("not given"),
            described
                .pricing_note
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            described.input_schema,
            if renamed.is_empty() {
                String::new()
            } else {
                format!("\nRenamed keys: {}", renamed.join(", "))
            },
            described.next_step
        );
        Ok(success(&described, text))
    }
}
