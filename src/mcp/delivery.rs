//! A finished job's result with its media: the per-call delivery argument, the call into
//! [`crate::media::collect`], and the rendering into MCP content — text, one inline image per
//! preview, one `resource_link` per output — with `structuredContent` kept or left out as
//! [`StructuredMode`] decides for the connected client.

use rmcp::{
    model::{CallToolResult, ContentBlock, Resource},
    Peer, RoleServer,
};
use schemars::JsonSchema;
use serde::Deserialize;

use base64::Engine as _;

use super::{args::Validate, render::JobResult, RunComfyServer};
use crate::dreamina::InvalidArgument;
use crate::media::{self, Collected, OutputReport, StructuredMode};
use crate::runcomfy::RequestId;

/// RunComfy's figure for how long result files stay hosted (for its other API: 7 days).
const URL_LIFETIME_HOURS: u32 = 7 * 24;

/// How a result's images come back; flattened into the arguments of the tools that return them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DeliveryArgs {
    /// false (default): images come back as small previews, with their URLs (and saved files when the server saves them). true: the full-size image files instead, up to the server's cap per result; they cost a lot of context, so ask only when full detail is needed inline.
    #[serde(default)]
    pub inline_full_size: bool,
}

/// `get_result`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResultArgs {
    /// The request_id that generate_image returned.
    pub request_id: RequestId,
    #[serde(flatten)]
    pub delivery: DeliveryArgs,
}

impl Validate for ResultArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(()) // RequestId checks itself while deserialising.
    }
}

impl RunComfyServer {
    /// Collects the media of a succeeded job into `result` and renders it for this client.
    pub(super) async fn deliver(
        &self,
        result: JobResult,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> CallToolResult {
        if result.status != "succeeded" || (result.images.is_empty() && result.videos.is_empty()) {
            return result.render();
        }
        let request = media::Request {
            name_stem: &result.request_id,
            images: &result.images,
            videos: &result.videos,
            full_size: delivery.inline_full_size,
        };
        let collected = media::collect(self.client.http(), &self.options.media, request).await;
        let client = peer.peer_info().map(|info| info.client_info.name.clone());
        render(result, collected, self.options.media.structured, client.as_deref())
    }
}

/// Text first (every fact, for clients and models that read only text), then the inline images,
/// then a link per output.
fn render(mut result: JobResult, collected: Collected, mode: StructuredMode, client: Option<&str>) -> CallToolResult {
    result.outputs = collected.outputs;
    result.notes = collected.notes;
    result.url_lifetime_hours = Some(URL_LIFETIME_HOURS);

    let mut content = vec![ContentBlock::text(text(&result))];
    let engine = base64::engine::general_purpose::STANDARD;
    content.extend(
        collected
            .inline
            .iter()
            .map(|image| ContentBlock::image(engine.encode(&image.data), image.mime_type.clone())),
    );
    content.extend(result.outputs.iter().map(resource_link));

    let mut call_result = CallToolResult::success(content);
    let keep = collected.inline.is_empty() || mode.keep_with_images(client);
    if keep {
        call_result.structured_content = serde_json::to_value(&result).ok();
    } else {
        tracing::debug!(
            ?client,
            "leaving structuredContent out so that the client shows the images"
        );
    }
    call_result
}

fn text(result: &JobResult) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut kinds = vec![count(result.images.len(), "image")];
    if !result.videos.is_empty() {
        kinds.push(count(result.videos.len(), "video"));
    }
    let mut text = format!("Job {}: {}. {}.", result.request_id, result.status, kinds.join(", "));
    for output in &result.outputs {
        text.push_str(&format!(
            "\n{} {}: {}",
            capitalised(&output.kind),
            output.index,
            output.url
        ));
        let facts = facts(output);
        if !facts.is_empty() {
            text.push_str(&format!("\n  {facts}"));
        }
        if let Some(path) = &output.saved_path {
            text.push_str(&format!("\n  saved to {path}"));
        }
        if let Some(inline) = &output.inline {
            let form = if inline.form == "preview" {
                "preview"
            } else {
                "full-size image"
            };
            text.push_str(&format!("\n  {form} attached ({}×{})", inline.width, inline.height));
        }
        if let Some(problem) = &output.problem {
            text.push_str(&format!("\n  note: {problem}"));
        }
    }
    for note in &result.notes {
        text.push_str(&format!("\nNote: {note}"));
    }
    text.push_str(&format!("\n{}", result.next_step));
    text
}

/// `2048×2048, PNG, 1.3 MB`.
fn facts(output: &OutputReport) -> String {
    let mut facts = Vec::new();
    if let (Some(w), Some(h)) = (output.width, output.height) {
        facts.push(format!("{w}×{h}"));
    }
    if let Some(mime) = &output.mime_type {
        facts.push(mime.trim_start_matches("image/").to_ascii_uppercase());
    }
    if let Some(bytes) = output.bytes {
        facts.push(human_bytes(bytes));
    }
    facts.join(", ")
}

fn resource_link(output: &OutputReport) -> ContentBlock {
    let name = output
        .saved_path
        .as_deref()
        .and_then(|p| std::path::Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}-{}", output.kind, output.index));
    let mut title = format!("{} {}", capitalised(&output.kind), output.index);
    let facts = facts(output);
    if !facts.is_empty() {
        title.push_str(&format!(" ({facts})"));
    }
    let mut resource = Resource::new(output.url.clone(), name).with_title(title);
    if let Some(mime) = &output.mime_type {
        resource = resource.with_mime_type(mime.clone());
    }
    if let Some(bytes) = output.bytes {
        resource = resource.with_size(bytes);
    }
    if let Some(path) = &output.saved_path {
        resource = resource.with_description(format!("Saved to {path}"));
    }
    ContentBlock::resource_link(resource)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1_000_000.0),
        b if b >= 1_000 => format!("{:.0} KB", b as f64 / 1_000.0),
        b => format!("{b} bytes"),
    }
}
