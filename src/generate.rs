//! `runcomfy-mcp generate`: the job flow for a person at a shell. Shows a progress spinner on
//! stderr with the phase and queue position, saves the images and prints their paths on stdout
//! (one per line, for scripts), and on Ctrl-C cancels the job if it is still queued. The flow
//! itself is the job service's, the same the MCP tools run.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{
    dreamina::ImageRequest,
    jobs::{JobService, Run, RunError, RunOutcome, Step},
    runcomfy::{CancelOutcome, JobStatus},
};

/// Runs one generation to the end and returns the saved files.
pub async fn run(jobs: &JobService, request: &ImageRequest) -> anyhow::Result<Vec<PathBuf>> {
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!(
        "submitting ({}, scale {})",
        request.size.as_str(),
        request.scale
    ));
    // Without a terminal the spinner is hidden; plain lines tell a log what happened instead.
    let say = |line: String| {
        if bar.is_hidden() {
            eprintln!("{line}")
        } else {
            bar.println(line)
        }
    };

    let cancel = CancellationToken::new();
    let ctrl_c = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    // --max-wait-secs bounds the wait here as it bounds the waiting tool's.
    let max_wait = jobs.policy().max_wait;
    let run = jobs
        .run(request, max_wait, &cancel, |_, step| match step {
            Step::Submitted(id) => say(format!("request_id {id}")),
            Step::Polled(_, event) => {
                if bar.is_hidden() && event.changed {
                    say(event.phase());
                }
                bar.set_message(event.phase());
            }
        })
        .await;
    ctrl_c.abort();
    bar.finish_and_clear();

    let (id, answer) = match run {
        Ok(Run {
            id,
            outcome: RunOutcome::Done(answer),
            ..
        }) if answer.status == JobStatus::Succeeded => (id, answer),
        Ok(Run {
            id,
            outcome: RunOutcome::Done(answer),
            ..
        }) => {
            let detail = answer.error_message().map(|e| format!(": {e}")).unwrap_or_default();
            bail!("job {id} ended {}{detail}", answer.status);
        }
        Ok(Run {
            id,
            outcome: RunOutcome::StillRunning(last),
            ..
        }) => {
            let status = last.map(|s| s.status.to_string()).unwrap_or_else(|| "in_queue".into());
            bail!("job {id} is still {status} after {max_wait:?}; it goes on at RunComfy (check it with an MCP client's get_result)");
        }
        Ok(Run {
            id,
            outcome: RunOutcome::Cancelled(cancel),
            ..
        }) => {
            let what = match cancel {
                Ok(answer) if answer.outcome == Some(CancelOutcome::Cancelled) => "the job was cancelled".to_owned(),
                Ok(_) => {
                    "the job was already running and could not be cancelled; it will finish at RunComfy".to_owned()
                }
                Err(e) => format!("cancelling the job failed: {e}"),
            };
            bail!("interrupted: {what} (request_id {id})");
        }
        Err(RunError::Submit(e)) => return Err(e.into()),
        Err(RunError::Follow { id, error }) => bail!("following job {id} failed: {error}"),
    };

    let output = answer.output.unwrap_or_default();
    let (images, videos) = (output.image_urls(), output.video_urls());
    if images.is_empty() && videos.is_empty() {
        bail!("job {id} succeeded but returned no output URLs");
    }
    // The same bounded download and safe atomic save as the MCP tools, without previews.
    let collected = jobs.collect(&id, &images, &videos, false).await;
    let mut saved = Vec::new();
    for output in collected.outputs {
        match (output.saved_path, output.problem) {
            (Some(path), _) => saved.push(PathBuf::from(path)),
            (None, problem) => eprintln!(
                "{} {} not saved ({}): {}",
                output.kind.as_str(),
                output.index,
                problem.unwrap_or_else(|| "no file".into()),
                output.url
            ),
        }
    }
    if saved.is_empty() {
        bail!("job {id} succeeded but no output could be saved");
    }
    Ok(saved)
}
