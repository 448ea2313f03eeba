//! `upload_image` (app-only: the view's drop zone and file picker): keeps an image the person
//! chose for their later edits and answers its reference, `upload:<id>`, which any generate tool
//! takes in `images` as it takes `request_id#n`. No host lets a view attach a file to the
//! conversation, so the view reads the file and sends it here. Nothing is paid for; the image is
//! checked and re-encoded as any reference image is, and kept for its caller only, for a while
//! (see `media::uploads`).

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
    media::uploads::{KEPT_FOR, MAX_PER_OWNER},
};

/// `upload_image`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UploadArgs {
    /// The image as a data:image/png, image/jpeg or image/webp;base64, URI.
    #[schemars(regex(pattern = crate::schema_check::DATA_URI))]
    pub image: String,
    /// The file's own name, only to say it back (never used as a path).
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub name: Option<String>,
}

impl Validate for UploadArgs {}

/// `upload_image`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Uploaded {
    /// `upload:<id>`: pass it in a generate tool's `images` (as request_id#n is) to edit the image.
    pub reference: String,
    /// The image as it will be sent to RunComfy (a PNG within its per-input limits).
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// When the server forgets it (RFC 3339).
    pub expires_at: String,
    pub next_step: String,
}

/// What the router, the app view and the tasks path know of `upload_image`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::upload_image_router,
    audience: Audience::ViewOnly,
    images: false,
    task: None,
};

#[tool_router(router = upload_image_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "upload_image",
        title = "Upload an image to edit",
        description = "Keep an image the person chose in the viewer (a data:image/...;base64, URI) for their edits, and return its reference upload:<id>, which generate_image and generate_image_and_wait take in images like request_id#n. For the viewer's drop zone and file picker; costs nothing.",
        input_schema = schema_for::<UploadArgs>(),
        output_schema = output_schema_for::<Uploaded>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn upload_image(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let UploadArgs { image, name } = args::parse(arguments)?;
        let upload = self
            .jobs
            .keep_upload(&caller, &image)
            .await
            .map_err(|why| ToolError::new(format!("The image was not kept: {why}")))?;
        let reference = upload.kept.reference.clone();
        let hours = KEPT_FOR.as_secs() / 3600;
        let next_step = format!(
            "To edit it, pass images: [\"{reference}\"] to generate_image (a paid job) with a prompt saying what to change. It is kept {hours} hours ({MAX_PER_OWNER} uploads at most)."
        );
        let named = name
            .map(|n| format!(" ({})", crate::text::ellipsis(n.trim(), 80)))
            .unwrap_or_default();
        let text = format!(
            "Kept the uploaded image{named} as {reference}: {}×{}. {next_step}",
            upload.width, upload.height
        );
        let expires_at = chrono::DateTime::<chrono::Utc>::from(upload.kept.expires_at)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(success(
            &Uploaded {
                reference,
                width: upload.width,
                height: upload.height,
                bytes: upload.bytes,
                expires_at,
                next_step,
            },
            text,
        ))
    }
}
