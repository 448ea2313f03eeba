//! `list_models`: RunComfy's models, searched, one compact line each (id, name, kind, price).
//! The kind is the media a model makes, read from its categories (RunComfy's own `kind` field
//! is always "model").

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, Validate},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::{
    jobs::Caller,
    runcomfy::{ModelInfo, ModelQuery},
};

/// The most models one answer lists.
const MAX_LIMIT: u32 = 100;
/// The longest search, category or kind taken (a search is a few words).
const MAX_FILTER_CHARS: usize = 500;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListModelsArgs {
    /// Words that must each appear in a model's id, name or description, e.g. "seedream edit" or "video".
    #[serde(default)]
    #[schemars(length(max = MAX_FILTER_CHARS))]
    pub search: Option<String>,
    /// Only models of this category, e.g. text-to-image, image-to-image, text-to-video, text-to-audio.
    #[serde(default)]
    #[schemars(length(max = MAX_FILTER_CHARS))]
    pub category: Option<String>,
    /// Only models of this kind: image, video or audio.
    #[serde(default)]
    #[schemars(length(max = MAX_FILTER_CHARS))]
    pub kind: Option<String>,
    /// Models to list, 1 to 100 (default 20).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = MAX_LIMIT))]
    pub limit: Option<u32>,
    /// Models to skip, to page on (default 0).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub offset: Option<u32>,
}

impl Validate for ListModelsArgs {}

/// One model, in brief.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelLine {
    pub model_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// e.g. "$0.03 per output" or "$0.10 per second"; absent when RunComfy gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
}

impl ModelLine {
    pub fn of(model: &ModelInfo) -> Self {
        let id = model.model_id.clone().unwrap_or_default();
        Self {
            name: model.display_name.clone().unwrap_or_else(|| id.clone()),
            model_id: id,
            kind: kind_text(model),
            price: price_text(model),
        }
    }
}

/// What the model makes (`image`, `video`, `audio`, or several joined by `/`), from its
/// categories; the entry's own `kind` only when it says more than RunComfy's usual "model".
pub fn kind_text(model: &ModelInfo) -> Option<String> {
    let kinds = model.media_kinds();
    if kinds.is_empty() {
        model.kind.clone().filter(|k| !k.eq_ignore_ascii_case("model"))
    } else {
        Some(kinds.join("/"))
    }
}

/// `$0.03 per output`, from the entry's price and unit (a price of 0 or below is not one).
pub fn price_text(model: &ModelInfo) -> Option<String> {
    let price = model.price_usd()?;
    let unit = model.price_unit.as_deref().unwrap_or("output");
    Some(format!("{} per {unit}", crate::jobs::price::usd(price)))
}

/// `list_models`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelList {
    pub models: Vec<ModelLine>,
    /// Models matching in all (more than listed when the limit cut it).
    pub total: usize,
    /// When this copy of the catalogue was read from RunComfy (RFC 3339).
    pub catalogue_read_at: String,
    pub next_step: String,
}

/// What the router, the app view and the tasks path know of `list_models`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::list_models_router,
    audience: Audience::Model,
    images: false,
    task: None,
};

#[tool_router(router = list_models_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "list_models",
        title = "List RunComfy models",
        description = "List and search the models RunComfy serves (image, edit, video, audio): one line per model with its model_id, name, kind and price. Then describe_model gives a model's input schema, and run_model runs it. Costs nothing.",
        input_schema = schema_for::<ListModelsArgs>(),
        output_schema = output_schema_for::<ModelList>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn list_models(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let args: ListModelsArgs = args::parse(arguments)?;
        let query = ModelQuery {
            search: args.search,
            category: args.category,
            kind: args.kind,
            limit: args.limit.unwrap_or(20) as usize,
            offset: args.offset.unwrap_or(0) as usize,
        };
        let found = self
            .jobs
            .catalogue()
            .search(caller.key(), &query)
            .await
            .map_err(|e| ToolError::new(e.to_string()))?;
        let models: Vec<ModelLine> = found.models.iter().map(ModelLine::of).collect();
        let shown = query.offset + models.len();
        let next_step = if models.is_empty() {
            "No model matches: try fewer or other words, or leave out category and kind.".to_owned()
        } else if shown < found.total {
            format!(
                "{} more: call again with offset {shown}. describe_model gives a model's input.",
                found.total - shown
            )
        } else {
            "describe_model with a model_id gives its input schema and price; run_model runs it.".to_owned()
        };
        let lines: Vec<String> = models
            .iter()
            .map(|m| {
                let mut line = format!("{} — {}", m.model_id, m.name);
                if let Some(kind) = &m.kind {
                    line.push_str(&format!(" [{kind}]"));
                }
                if let Some(price) = &m.price {
                    line.push_str(&format!(", {price}"));
                }
                line
            })
            .collect();
        let text = format!(
            "{} of {} models:\n{}\nNext: {next_step}",
            models.len(),
            found.total,
            lines.join("\n")
        );
        let list = ModelList {
            models,
            total: found.total,
            catalogue_read_at: found.read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            next_step,
        };
        Ok(success(&list, text))
    }
}
