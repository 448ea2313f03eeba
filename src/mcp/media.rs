//! Result media as MCP content: an inline image block per preview or full-size image, and a
//! `resource_link` per output, with the facts a person reads (`2048×2048, PNG, 1.3 MB`).

use base64::Engine as _;
use rmcp::model::{ContentBlock, Resource};

use crate::{
    media::{InlineImage, MediaNote, OutputReport, MAX_PROCESSED},
    text::{capitalised, thousands},
};

pub fn image_block(image: &InlineImage) -> ContentBlock {
    let engine = base64::engine::general_purpose::STANDARD;
    ContentBlock::image(engine.encode(&image.data), image.mime_type.clone())
}

/// A `resource_link` for an output whose URL may be a link; `None` for one that is listed as
/// text only ([`OutputReport::not_a_link`]). `number`: the output's place among those of its
/// kind in the answer (see [`label`]).
pub fn resource_link(output: &OutputReport, number: usize) -> Option<ContentBlock> {
    if output.not_a_link.is_some() {
        return None;
    }
    let name = output
        .saved_path
        .as_deref()
        .and_then(|p| std::path::Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}-{}", output.kind.as_str(), output.index));
    let mut title = label(output, number);
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
    Some(ContentBlock::resource_link(resource))
}

/// `Image 2`: `number` is the output's place among those of its kind in the whole answer, which
/// for a batch runs across its jobs (each job's own `index` starts again at 1: every image of a
/// batch was "Image 1"). Its reference still names the job and its index there.
pub fn label(output: &OutputReport, number: usize) -> String {
    format!("{} {number}", capitalised(output.kind.as_str()))
}

/// Each output's number for [`label`]: its place among the outputs of its kind, from 1.
pub fn numbers(outputs: &[OutputReport]) -> Vec<usize> {
    let mut seen: Vec<(crate::media::OutputKind, usize)> = Vec::new();
    outputs
        .iter()
        .map(|output| match seen.iter_mut().find(|(kind, _)| *kind == output.kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((output.kind, 1));
                1
            }
        })
        .collect()
}

/// `2048×2048, PNG, 1.3 MB`, or `video/mp4, 12.0 MB`.
pub fn facts(output: &OutputReport) -> String {
    let mut facts = Vec::new();
    if let (Some(w), Some(h)) = (output.width, output.height) {
        facts.push(format!("{w}×{h}"));
    }
    if let Some(mime) = &output.mime_type {
        // `PNG` for an image; a video's or audio file's type as it is (`video/mp4`).
        facts.push(match mime.strip_prefix("image/") {
            Some(format) => format.to_ascii_uppercase(),
            None => mime.clone(),
        });
    }
    if let Some(bytes) = output.bytes {
        facts.push(human_bytes(bytes));
    }
    facts.join(", ")
}

/// A result-wide note as the model reads it (in `notes`, and as a `Note:` line of the text).
pub fn note_text(note: &MediaNote) -> String {
    match *note {
        MediaNote::InlineImagesOff => {
            "Inline images are turned off on this server (--no-preview); use the URLs.".to_owned()
        }
        MediaNote::FilesNotSaved { count } => format!(
            "{count} video or audio file(s) are not saved: at most {MAX_PROCESSED} outputs of a result are downloaded. Their URLs are listed."
        ),
        MediaNote::ImagesNotFetched {
            fetched,
            previewed,
            saved,
        } => format!(
            "Only the first {fetched} images of a result are downloaded{}; the others are listed by URL.",
            match (previewed, saved) {
                (true, true) => ", previewed and saved",
                (true, false) => " and previewed",
                (false, _) => " and saved",
            },
        ),
        MediaNote::OutputsUnlisted { total, unlisted } => format!(
            "RunComfy listed {} outputs for this job: the first {} are listed here, and {} more are not.",
            thousands(total),
            thousands(total - unlisted),
            thousands(unlisted),
        ),
        MediaNote::PreviewsInsteadOfFullSize { count, cap_bytes } => format!(
            "{count} image(s) came as previews instead of full size: full-size images in one result are capped at {} KB.",
            cap_bytes / 1024
        ),
        MediaNote::PreviewsLeftOut { count } => format!(
            "{count} image(s) have no inline preview, to keep the result small; their URLs are listed."
        ),
    }
}

/// [`note_text`] of each note, in order.
pub fn note_texts(notes: &[MediaNote]) -> Vec<String> {
    notes.iter().map(note_text).collect()
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1_000_000.0),
        b if b >= 1_000 => format!("{:.0} KB", b as f64 / 1_000.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words are the ones the model has always read: tests and hosts' transcripts match them.
    #[test]
    fn each_note_reads_as_before() {
        for (note, text) in [
            (
                MediaNote::InlineImagesOff,
                "Inline images are turned off on this server (--no-preview); use the URLs.",
            ),
            (
                MediaNote::FilesNotSaved { count: 2 },
                "2 video or audio file(s) are not saved: at most 16 outputs of a result are downloaded. Their URLs are listed.",
            ),
            (
                MediaNote::ImagesNotFetched {
                    fetched: 16,
                    previewed: true,
                    saved: true,
                },
                "Only the first 16 images of a result are downloaded, previewed and saved; the others are listed by URL.",
            ),
            (
                MediaNote::ImagesNotFetched {
                    fetched: 16,
                    previewed: true,
                    saved: false,
                },
                "Only the first 16 images of a result are downloaded and previewed; the others are listed by URL.",
            ),
            (
                MediaNote::ImagesNotFetched {
                    fetched: 3,
                    previewed: false,
                    saved: true,
                },
                "Only the first 3 images of a result are downloaded and saved; the others are listed by URL.",
            ),
            (
                MediaNote::OutputsUnlisted {
                    total: 20_000,
                    unlisted: 19_936,
                },
                "RunComfy listed 20,000 outputs for this job: the first 64 are listed here, and 19,936 more are not.",
            ),
            (
                MediaNote::PreviewsInsteadOfFullSize {
                    count: 1,
                    cap_bytes: 3 * 1024 * 1024,
                },
                "1 image(s) came as previews instead of full size: full-size images in one result are capped at 3072 KB.",
            ),
            (
                MediaNote::PreviewsLeftOut { count: 4 },
                "4 image(s) have no inline preview, to keep the result small; their URLs are listed.",
            ),
        ] {
            assert_eq!(note_text(&note), text);
        }
    }
}
