//! `runcomfy-mcp generate`: the job flow for a person at a shell. Shows a progress spinner on
//! stderr with the phase and queue position, saves the images and prints their paths on stdout
//! (one per line, for scripts), and on Ctrl-C cancels the job if it is still queued. The flow
//! itself is the job service's, the same the MCP tools run; `--image` makes it an edit.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{
    dreamina::ImageRequest,
    jobs::{price::usd, Caller, JobService, Run, RunError, RunOutcome, Step},
    media::{
        inputs::{looks_like_a_path, Source},
        OutputUrls,
    },
    runcomfy::{CancelOutcome, JobStatus},
};

/// The `--image` entries as the job service takes them: a local file (one that exists, relative
/// to the working directory, or an absolute path) becomes its absolute path, anything else stays
/// as typed. Also returns the files' directories, which this run may read: naming a file on
/// one's own command line is permission to send it.
pub fn local_images(entries: &[String]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut images = Vec::with_capacity(entries.len());
    let mut dirs = Vec::new();
    for entry in entries {
        let typed = Path::new(entry);
        let path = match Source::parse(entry) {
            Ok(Source::File(path)) => path,
            _ if typed.exists() || looks_like_a_path(entry) => std::path::absolute(typed)?,
            _ => {
                images.push(entry.clone());
                continue;
            }
        };
        if let Some(parent) = path.parent().filter(|p| p.is_dir()) {
            dirs.push(parent.display().to_string());
        }
        images.push(path.display().to_string());
    }
    Ok((images, dirs))
}

/// Runs `count` jobs of one request to the end (one unless `--count` asks for alternatives) and
/// hands each saved file to `saved`. Fails if any job gave no image, after the others' files.
pub async fn run(
    jobs: &JobService,
    request: &ImageRequest,
    count: u32,
    mut saved: impl FnMut(&Path),
) -> anyhow::Result<()> {
    // A shell is one person with the server's key.
    let caller = Caller::server();
    // Every reference image checked and read before anything is paid for.
    let prepared = jobs.prepare(&caller, request).await?;
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"));
    // The spinner turns on its own thread, eight times a second; without a terminal it is never
    // drawn, and those wake-ups were a third of a scripted run's context switches.
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    bar.set_message(format!(
        "submitting {}({}, {}, scale {})",
        if count > 1 {
            format!("{count} jobs ")
        } else {
            String::new()
        },
        request.endpoint().as_str(),
        prepared.size,
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
    // Which job a line is about, when there are several.
    let job = |i: usize| {
        if count > 1 {
            format!("job {}/{count}: ", i + 1)
        } else {
            String::new()
        }
    };

    match jobs.estimate(&caller, &prepared, count).await {
        Ok(estimate) => say(estimate.text()),
        Err(reason) => say(format!("no cost estimate: {reason}")),
    }

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
    let runs = jobs
        .run_batch(&caller, &prepared, count, max_wait, &cancel, |i, _, step| match step {
            Step::Submitted(id) => say(format!("{}request_id {id}", job(i))),
            Step::Polled(_, event) => {
                if bar.is_hidden() && event.changed {
                    say(format!("{}{}", job(i), event.phase()));
                }
                bar.set_message(format!("{}{}", job(i), event.phase()));
            }
        })
        .await;
    ctrl_c.abort();
    bar.finish_and_clear();

    let mut failures = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        match save(jobs, &caller, run, max_wait).await {
            Ok(paths) => paths.iter().for_each(|path| saved(path)),
            Err(e) => failures.push(format!("{}{e:#}", job(i))),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 if count == 1 => Err(anyhow::anyhow!(failures.remove(0))),
        n => bail!("{n} of {count} jobs gave no image: {}", failures.join("; ")),
    }
}

/// One finished run's images saved, or why there are none.
async fn save(
    jobs: &JobService,
    caller: &Caller,
    run: Result<Run, RunError>,
    max_wait: Duration,
) -> anyhow::Result<Vec<PathBuf>> {
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

    match answer.cost {
        Some(cost) => eprintln!("cost {} (request_id {id})", usd(cost)),
        None => eprintln!("cost not reported by RunComfy (request_id {id})"),
    }
    let output = answer.output.unwrap_or_default();
    let urls = OutputUrls::of(&output);
    if urls.is_empty() {
        bail!("job {id} succeeded but returned no output URLs");
    }
    // The same bounded download and safe atomic save as the MCP tools, without previews.
    let collected = jobs.collect(caller, &id, &urls, false).await;
    let mut saved = Vec::new();
    // Outputs past the first media::MAX_PROCESSED are not fetched: counted, not listed one by one.
    let mut skipped = collected.unlisted;
    for output in collected.outputs {
        match (output.saved_path, output.problem) {
            (Some(path), _) => saved.push(PathBuf::from(path)),
            (None, Some(problem)) => eprintln!(
                "{} {} not saved ({problem}): {}",
                output.kind.as_str(),
                output.index,
                output.url
            ),
            (None, None) => skipped += 1,
        }
    }
    if skipped > 0 {
        eprintln!(
            "{} more outputs not saved: at most {} are downloaded per job",
            crate::text::thousands(skipped),
            crate::media::MAX_PROCESSED
        );
    }
    if saved.is_empty() {
        bail!("job {id} succeeded but no output could be saved");
    }
    Ok(saved)
}
