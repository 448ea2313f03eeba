//! What a finished job's outputs became, as the tools report it: one [`OutputReport`] per
//! listed output, the inline images, and the result-wide [`MediaNote`]s, gathered in a
//! [`Collected`]. Plain data: [`super::collect`] fills it, `mcp/` renders it.

use schemars::JsonSchema;
use serde::Serialize;

use super::MediaNote;

/// What kind of file an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    Image,
    Video,
    Audio,
    /// Any other file a model returned (under a key of its own, of no known media type):
    /// listed by URL, never downloaded.
    File,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }
}

/// How an image is carried inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InlineForm {
    /// Scaled down and re-encoded as JPEG.
    Preview,
    /// The file as RunComfy made it.
    FullSize,
}

/// What one output became.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutputReport {
    /// `image`, `video`, `audio` or `file` (any other output, listed by URL only).
    #[schemars(with = "String")]
    pub kind: OutputKind,
    /// 1-based position among the outputs of its kind, in RunComfy's order.
    pub index: usize,
    pub url: String,
    /// How to name this image in `images` to edit or reuse it: `<request_id>#<n>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The content type: an image's as sniffed from its bytes, a video's or audio file's as its server named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// File size in bytes, when it was downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where the file was saved on the server's machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_path: Option<String>,
    /// The inline copy of this image in the result's content, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineReport>,
    /// What went wrong with this output (the URL still works).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Why the URL is listed as text only, never as a link or an open button (only https: URLs are linked: a javascript: or data: URL could run script where it is opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_a_link: Option<String>,
}

impl OutputReport {
    /// An output known by its URL only: nothing fetched, nothing wrong.
    pub(crate) fn new(kind: OutputKind, index: usize, url: &str) -> Self {
        Self {
            kind,
            index,
            url: url.to_owned(),
            reference: None,
            mime_type: None,
            bytes: None,
            width: None,
            height: None,
            saved_path: None,
            inline: None,
            problem: None,
            not_a_link: None,
        }
    }
}

/// Describes an inline image block.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InlineReport {
    /// `preview` (scaled down) or `full_size`.
    #[schemars(with = "String")]
    pub form: InlineForm,
    pub width: u32,
    pub height: u32,
    /// Bytes before base64.
    pub bytes: usize,
    pub mime_type: String,
}

/// An image to put inline, in output order.
#[derive(Debug, Clone)]
pub struct InlineImage {
    pub index: usize,
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// Everything [`super::collect`] found out and made.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The listed outputs (see [`super::listing`]): images, then videos, then audio.
    pub outputs: Vec<OutputReport>,
    pub inline: Vec<InlineImage>,
    /// Result-wide remarks (per-output ones are in [`OutputReport::problem`]).
    pub notes: Vec<MediaNote>,
    /// Outputs the upstream listed beyond those in `outputs`.
    pub unlisted: usize,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_report_of_a_url_only_says_its_kind_place_and_url() {
        let report = OutputReport::new(OutputKind::Video, 2, "https://x/v.mp4");
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({"kind": "video", "index": 2, "url": "https://x/v.mp4"})
        );
        assert_eq!(OutputKind::File.as_str(), "file");
    }

    #[test]
    fn an_inline_copy_is_described_in_snake_case() {
        let report = OutputReport {
            inline: Some(InlineReport {
                form: InlineForm::FullSize,
                width: 2,
                height: 1,
                bytes: 10,
                mime_type: "image/png".into(),
            }),
            ..OutputReport::new(OutputKind::Image, 1, "u")
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["kind"], "image");
        assert_eq!(
            value["inline"],
            json!({"form": "full_size", "width": 2, "height": 1, "bytes": 10, "mime_type": "image/png"})
        );
    }
}
