//! `runcomfy-mcp generate`: the same job flow for a person at a shell. Submits, shows a progress
//! spinner on stderr with the phase and queue position, saves the images and prints their paths
//! on stdout (one per line, for scripts), and on Ctrl-C cancels the job if it is still queued.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{
    dreamina::ImageRequest,
    jobs::{Backoff, WaitOptions, WaitOutcome},
    journal::{JobUpdate, Journal},
    media::{self, MediaOptions, OutputDir},
    runcomfy::{CancelOutcome, Client, JobStatus},
};

pub struct GenerateOptions {
    pub out_dir: OutputDir,
    pub max_wait: Duration,
    pub backoff: Backoff,
    /// Records the job like the MCP tools do, with the files saved here.
    pub journal: Journal,
}

/// Runs one generation to the end and returns the saved files.
pub async fn run(client: &Client, request: &ImageRequest, options: &GenerateOptions) -> anyhow::Result<Vec<PathBuf>> {
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!(
        "submitting ({}, scale {})",
        request.size.as_str(),
        request.scale
    ));

    let journal = &options.journal;
    let wire = request.to_wire();
    let id = journal
        .track_submit(request, client.model(), client.submit(&wire))
        .await?;
    // Without a terminal the spinner is hidden; plain lines tell a log what happened instead.
    let say = |line: String| {
        if bar.is_hidden() {
            eprintln!("{line}")
        } else {
            bar.println(line)
        }
    };
    say(format!("request_id {id}"));

    let cancel = CancellationToken::new();
    let ctrl_c = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let wait = WaitOptions {
        backoff: options.backoff,
        ..WaitOptions::for_duration(options.max_wait)
    };
    let outcome = journal
        .wait(client, &id, &wait, &cancel, |event| {
            if bar.is_hidden() && event.changed {
                say(event.phase());
            }
            bar.set_message(event.phase());
        })
        .await;
    ctrl_c.abort();
    bar.finish_and_clear();

    match outcome? {
        WaitOutcome::Finished(state) if state.status == JobStatus::Succeeded => {}
        WaitOutcome::Finished(state) => {
            let detail = journal
                .track(&id, client.result(&id), JobUpdate::from_result)
                .await
                .ok()
                .and_then(|r| r.error)
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            bail!("job {id} ended {}{detail}", state.status);
        }
        WaitOutcome::DeadlinePassed { last } => {
            let status = last.map(|s| s.status.to_string()).unwrap_or_else(|| "in_queue".into());
            bail!("job {id} is still {status} after {:?}; it goes on at RunComfy (check it with an MCP client's get_result)", options.max_wait);
        }
        WaitOutcome::Cancelled { cancel, .. } => {
            if let Ok(answer) = &cancel {
                journal.record(&id, JobUpdate::from_cancel(answer)).await;
            }
            let what = match cancel {
                Ok(answer) if answer.outcome == Some(CancelOutcome::Cancelled) => "the job was cancelled".to_owned(),
                Ok(_) => {
                    "the job was already running and could not be cancelled; it will finish at RunComfy".to_owned()
                }
                Err(e) => format!("cancelling the job failed: {e}"),
            };
            bail!("interrupted: {what} (request_id {id})");
        }
    }

    let result = journal.track(&id, client.result(&id), JobUpdate::from_result).await?;
    let output = result.output.unwrap_or_default();
    let (images, videos) = (output.image_urls(), output.video_urls());
    if images.is_empty() && videos.is_empty() {
        bail!("job {id} succeeded but returned no output URLs");
    }
    // The same bounded download and safe atomic save as the MCP tools, without previews.
    let media = MediaOptions {
        output_dir: Some(options.out_dir.clone()),
        previews: false,
        ..MediaOptions::default()
    };
    let request = media::Request {
        name_stem: id.as_str(),
        images: &images,
        videos: &videos,
        full_size: false,
    };
    let collected = media::collect(client.http(), &media, request).await;
    let mut saved = Vec::new();
    for output in collected.outputs {
        match (output.saved_path, output.problem) {
            (Some(path), _) => saved.push(PathBuf::from(path)),
            (None, problem) => eprintln!(
                "{} {} not saved ({}): {}",
                output.kind,
                output.index,
                problem.unwrap_or_else(|| "no file".into()),
                output.url
            ),
        }
    }
    if saved.is_empty() {
        bail!("job {id} succeeded but no output could be saved");
    }
    let paths = saved.iter().map(|p| p.display().to_string()).collect();
    journal.record(&id, JobUpdate::saved(paths)).await;
    Ok(saved)
}
