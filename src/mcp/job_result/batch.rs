//! A batch's result: every job's row, the images of those that succeeded collected together
//! (within one result's inline budget), and the request_ids of those still going. An error only
//! when no job has or will have an image.

use super::{
    super::{
        advice::{how_to_go_on, job_failed, maker_tool, URLS_EXPIRE},
        answer::ToolError,
    },
    cancelled_job, count_u32, BatchJob, Summary,
};
use crate::{
    jobs::{Batch, JobOutcome, Origin},
    media::{Collected, OutputKind, OutputUrls},
    runcomfy::JobStatus,
};

impl Summary {
    pub(super) fn batch(batch: Batch, origin: Option<&Origin>) -> Result<Self, ToolError> {
        let status = batch.status();
        let finished = batch.finished();
        let cost_usd = batch.cost_usd();
        let still_going: Vec<String> = batch.still_going().iter().map(|id| format!("\"{id}\"")).collect();
        let request_ids = batch.request_ids();
        let made = batch.made_or_making();
        let count = batch.jobs.len();

        let mut urls = OutputUrls::default();
        let mut all = Collected::default();
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for job in batch.jobs {
            let (row, error) = row(job, origin, &mut urls, &mut all);
            rows.push(row);
            errors.extend(error);
        }
        let (Some(first_id), true) = (request_ids.first().cloned(), made) else {
            let texts: Vec<&str> = errors.iter().map(ToolError::text).collect();
            return Err(ToolError::new(format!(
                "None of the {count} jobs made an image.\n{}",
                texts.join("\n")
            )));
        };

        let mut next = Vec::new();
        if !still_going.is_empty() {
            next.push(format!(
                "Still going at RunComfy: call get_result with request_id {} in a few seconds to collect {}. Do not call {} again for them: that would start new paid jobs.",
                still_going.join(", "),
                if still_going.len() == 1 { "its outputs" } else { "their outputs" },
                maker_tool(origin)
            ));
        }
        if let Some(first) = all.outputs.iter().find_map(|o| o.reference.clone()) {
            next.push(format!("{URLS_EXPIRE} {}", how_to_go_on(&first)));
        }
        Ok(Self {
            request_id: first_id,
            status,
            finished,
            queue_position: None,
            urls,
            media: all,
            created_at: None,
            finished_at: None,
            next_step: next.join(" "),
            jobs: rows,
            cost_usd,
        })
    }
}

/// One job's row, its outputs added to the batch's (`urls`, `all`), and the error it adds to
/// the batch's when none made anything.
fn row(
    job: JobOutcome,
    origin: Option<&Origin>,
    urls: &mut OutputUrls,
    all: &mut Collected,
) -> (BatchJob, Option<ToolError>) {
    let mut row = BatchJob {
        request_id: job.id().cloned(),
        status: job.state(),
        finished: job.finished(),
        queue_position: job.queue_position(),
        images: Vec::new(),
        unlisted_outputs: 0,
        error: None,
        cost_usd: job.cost_usd(),
    };
    let error = match job {
        JobOutcome::Answered { media: Some(media), .. } => {
            // What collect_all listed, within each job's bounds; the rest is counted.
            let listed = |kind| {
                media
                    .outputs
                    .iter()
                    .filter(move |o| o.kind == kind)
                    .map(|o| o.url.clone())
            };
            row.images = listed(OutputKind::Image).collect();
            urls.images.extend_from_slice(&row.images);
            urls.videos.extend(listed(OutputKind::Video));
            urls.audios.extend(listed(OutputKind::Audio));
            urls.files.extend(listed(OutputKind::File));
            row.unlisted_outputs = count_u32(media.unlisted);
            all.unlisted += media.unlisted;
            all.outputs.extend(media.outputs);
            all.notes.extend(media.notes);
            all.inline.extend(media.inline);
            None
        }
        JobOutcome::Answered { id, result, .. } if result.status == JobStatus::Failed => {
            let failure = job_failed(&id, &result, origin);
            row.error = Some(failure.text().replace('\n', " "));
            Some(failure)
        }
        JobOutcome::Answered { .. } | JobOutcome::Submitted { .. } | JobOutcome::StillRunning { .. } => None,
        JobOutcome::Cancelled { id, cancel } => {
            let what = cancelled_job(&id, &cancel);
            let error = ToolError::new(format!("The wait for job {id} was cancelled. {what}"));
            row.error = Some(what);
            Some(error)
        }
        JobOutcome::NotSubmitted(e) => {
            let failure = ToolError::submit(&e);
            row.error = Some(failure.text().replace('\n', " "));
            Some(failure)
        }
        JobOutcome::Lost { id, error } => {
            // It exists and may still make its image: something to come back for, not an error.
            row.error = Some(format!(
                "Following this job failed: {}",
                ToolError::api(&id, &error).text()
            ));
            None
        }
    };
    (row, error)
}
