//! Result images as MCP resources, so that a client can attach a result and the app view can
//! show it without any network of its own: a template for each output form, read with
//! `resources/read`, each bounded in size. `resources/list` names the images of the jobs this
//! machine recorded (and, for a client that renders MCP Apps, the view).
//!
//! `runcomfy://jobs/{request_id}/images/{n}`: image n (from 1) as RunComfy made it, up to
//! [`ORIGINAL_MAX_BYTES`]. `runcomfy://jobs/{request_id}/previews/{n}`: a JPEG of at most the
//! server's preview size.

use base64::Engine as _;
use rmcp::{
    model::{ContentBlock, ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
    ErrorData,
};
use serde_json::json;

use super::{app, RunComfyServer};
use crate::{
    jobs::Caller,
    journal::{JobQuery, RecordedStatus},
    media::{self, on_demand::Form},
    runcomfy::{JobStatus, RequestId},
};

const SCHEME: &str = "runcomfy://jobs/";
/// `runcomfy://uploads/{id}`: an image the caller uploaded from the app view, as it is kept (a
/// PNG), for the view's before-and-after. Not listed: only the view, which made the upload,
/// names it.
const UPLOADS: &str = "runcomfy://uploads/";
/// An original larger than this is refused (its URL is in the result): base64 makes it a third
/// larger again, and clients cap a message at a few MB.
pub const ORIGINAL_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Jobs whose images `resources/list` names, newest first.
const LISTED_JOBS: u32 = 20;

/// Which form of an output a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Preview,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Self::Image => "images",
            Self::Preview => "previews",
        }
    }
}

fn image_uri(id: &str, index: usize) -> String {
    format!("{SCHEME}{id}/{}/{index}", Kind::Image.segment())
}

fn preview_uri(id: &str, index: impl std::fmt::Display) -> String {
    format!("{SCHEME}{id}/{}/{index}", Kind::Preview.segment())
}

/// A `resource_link` to image `index` of job `id`'s preview (for an answer that carries none).
pub(super) fn preview_link(id: &str, index: &str) -> ContentBlock {
    let resource = Resource::new(preview_uri(id, index), format!("{id}-{index}-preview"))
        .with_title(format!("Preview of image {index} of job {id}"))
        .with_mime_type("image/jpeg");
    ContentBlock::resource_link(resource)
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{SCHEME}{{request_id}}/images/{{n}}"), "result-image")
            .with_title("Result image")
            .with_description(format!(
                "Image n (from 1) of a finished job, as RunComfy made it (PNG, JPEG or WebP), up to {} MB.",
                ORIGINAL_MAX_BYTES / (1024 * 1024)
            )),
        ResourceTemplate::new(format!("{SCHEME}{{request_id}}/previews/{{n}}"), "result-preview")
            .with_title("Result image preview")
            .with_description("A small JPEG preview of image n (from 1) of a finished job.")
            .with_mime_type("image/jpeg"),
    ]
}

/// `runcomfy://jobs/{id}/{images|previews}/{n}` parsed.
fn parse(uri: &str) -> Option<(RequestId, Kind, usize)> {
    let rest = uri.strip_prefix(SCHEME)?;
    let mut parts = rest.split('/');
    let (id, kind, index) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let kind = match kind {
        "images" => Kind::Image,
        "previews" => Kind::Preview,
        _ => return None,
    };
    Some((RequestId::parse(id).ok()?, kind, index.parse().ok()?))
}

/// The URI is the client's own input, of any length: quoted cut short.
fn not_found(uri: &str, why: &str) -> ErrorData {
    let uri = crate::text::ellipsis(uri, crate::transport::jsonrpc_errors::MAX_ECHO);
    ErrorData::resource_not_found(format!("{uri}: {why}"), Some(json!({ "uri": uri })))
}

impl RunComfyServer {
    /// The view (for a client that renders it) and `caller`'s own jobs' images.
    pub(super) async fn list_resources_for(&self, caller: &Caller, renders: bool) -> ListResourcesResult {
        let mut resources = Vec::new();
        if renders {
            resources.push(viewer_resource());
        }
        let query = JobQuery {
            owner: caller.owner().clone(),
            status: Some(RecordedStatus::Job(JobStatus::Succeeded)),
            limit: LISTED_JOBS,
        };
        for job in self.jobs.list(caller, query).await.unwrap_or_default() {
            let Some(id) = &job.request_id else { continue };
            // A hostile upstream may list thousands of outputs: name no more than a result processes.
            for index in 1..=job.images.len().min(media::MAX_PROCESSED) {
                let prompt = crate::text::ellipsis(&job.prompt, 60);
                resources.push(
                    Resource::new(image_uri(id, index), format!("{id}-{index}"))
                        .with_title(format!("Image {index} of \"{prompt}\""))
                        .with_description(format!("Made {} at {}", job.submitted_at.to_rfc3339(), job.size)),
                );
            }
        }
        ListResourcesResult::with_all_items(resources)
    }

    /// A resource of `caller`'s: another person's job image is not found, as an unknown one.
    pub(super) async fn read_resource_at(
        &self,
        caller: &Caller,
        uri: &str,
        renders: bool,
    ) -> Result<ReadResourceResult, ErrorData> {
        if uri == app::VIEWER_URI {
            if !renders {
                return Err(not_found(
                    uri,
                    "the view is for clients that declare the MCP Apps extension",
                ));
            }
            let contents = ResourceContents::TextResourceContents {
                uri: uri.to_owned(),
                mime_type: Some(app::MIME_TYPE.to_owned()),
                text: app::VIEWER_HTML.to_owned(),
                meta: Some(app::viewer_meta()),
            };
            return Ok(ReadResourceResult::new(vec![contents]));
        }
        if let Some(id) = uri.strip_prefix(UPLOADS) {
            let png = self.jobs.upload(caller, id).await.map_err(|why| not_found(uri, &why))?;
            let blob = base64::engine::general_purpose::STANDARD.encode(&png);
            return Ok(ReadResourceResult::new(vec![
                ResourceContents::blob(blob, uri).with_mime_type("image/png")
            ]));
        }
        let Some((id, kind, index)) = parse(uri) else {
            return Err(not_found(
                uri,
                "not a resource of this server: use runcomfy://jobs/{request_id}/images/{n} or runcomfy://jobs/{request_id}/previews/{n}",
            ));
        };
        let form = match kind {
            Kind::Image => Form::Original {
                max_bytes: ORIGINAL_MAX_BYTES,
            },
            Kind::Preview => Form::Preview,
        };
        let file = self
            .jobs
            .output_file(caller, &id, index, form)
            .await
            .map_err(|why| not_found(uri, &why))?;
        let blob = base64::engine::general_purpose::STANDARD.encode(&file.data);
        Ok(ReadResourceResult::new(vec![
            ResourceContents::blob(blob, uri).with_mime_type(file.mime_type)
        ]))
    }
}

fn viewer_resource() -> Resource {
    let mut resource = Resource::new(app::VIEWER_URI, "viewer")
        .with_title("Dreamina image viewer")
        .with_description("Shows a job's images live, with actions per image; for list_jobs, a gallery.")
        .with_mime_type(app::MIME_TYPE);
    resource.meta = Some(app::viewer_meta());
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_strangers_are_refused() {
        let (id, kind, index) = parse(&preview_uri("abc-123", 2)).unwrap();
        assert_eq!((id.as_str(), kind, index), ("abc-123", Kind::Preview, 2));
        assert_eq!(parse(&image_uri("abc", 1)).unwrap().1, Kind::Image);
        for bad in [
            "runcomfy://jobs/abc/images",
            "runcomfy://jobs/abc/images/x",
            "runcomfy://jobs/abc/videos/1",
            "runcomfy://jobs/abc/images/1/more",
            "runcomfy://jobs/../images/1",
            "file:///etc/passwd",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
