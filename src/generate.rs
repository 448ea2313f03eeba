//! `runcomfy-mcp generate`: the same job flow for a person at a shell. Submits, shows a progress
//! spinner on stderr with the phase and queue position, saves the images and prints their paths
//! on stdout (one per line, for scripts), and on Ctrl-C cancels the job if it is still queued.

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{
    dreamina::ImageRequest,
    jobs::{self, Backoff, WaitOptions, WaitOutcome},
    runcomfy::{CancelOutcome, Client, JobStatus},
};

pub struct GenerateOptions {
    pub out_dir: PathBuf,
    pub max_wait: Duration,
    pub backoff: Backoff,
}

/// Runs one generation to the end and returns the saved files.
pub async fn run(client: &Client, request: &ImageRequest, options: &GenerateOptions) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create the output directory {}", options.out_dir.display()))?;
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!(
        "submitting ({}, scale {})",
        request.size.as_str(),
        request.scale
    ));

    let id = client.submit(&request.to_wire()).await?;
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
    let outcome = jobs::wait(client, &id, &wait, &cancel, |event| {
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
            let detail = client
                .result(&id)
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

    let result = client.result(&id).await?;
    let urls = result.output.map(|o| o.image_urls()).unwrap_or_default();
    if urls.is_empty() {
        bail!("job {id} succeeded but returned no image URLs");
    }
    let mut saved = Vec::new();
    for (index, url) in urls.iter().enumerate() {
        let path = options.out_dir.join(format!("{id}-{}.png", index + 1));
        download(client, url, &path)
            .await
            .with_context(|| format!("downloading {url}"))?;
        saved.push(path);
    }
    Ok(saved)
}

/// Streams a result to a temporary file beside its target and renames it into place, so a
/// failed download never leaves a half-written image under the final name.
async fn download(client: &Client, url: &str, path: &std::path::Path) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut response = client.http().get(url).send().await?.error_for_status()?;
    let partial = path.with_extension("part");
    let mut file = tokio::fs::File::create(&partial).await?;
    while let Some(chunk) = response.chunk().await? {
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    tokio::fs::rename(&partial, path).await?;
    Ok(())
}
