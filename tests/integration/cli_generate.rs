//! `runcomfy-mcp generate` from a shell: real PNG files of the requested size, and Ctrl-C that
//! cancels a queued job.

use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::json;

#[test]
fn generate_with_the_simulator_saves_real_pngs() {
    let out = tempfile::tempdir().unwrap();
    let output = Bin::new([
        "generate",
        "a lighthouse, 'HELLO' painted on it",
        "--size",
        "2304x1728",
        "--simulate",
    ])
    .args(["--poll-first-ms", "50", "--out"])
    .arg(out.path())
    .std()
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("request_id"), "{stderr}");
    // The estimate before paying, the cost after (the simulator's $0.03 a picture).
    assert!(stderr.contains("Estimated cost $0.03–$0.45"), "{stderr}");
    assert!(stderr.contains("cost $0.03 (request_id"), "{stderr}");
    let paths = saved_paths(&output);
    assert_eq!(paths.len(), 1, "{paths:?}");
    let file = std::fs::File::open(&paths[0]).unwrap();
    let info = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap()
        .info()
        .clone();
    assert_eq!((info.width, info.height), (2304, 1728));
    assert!(paths[0].starts_with(out.path().to_str().unwrap()));
}

#[test]
fn generate_refuses_bad_input_before_submitting() {
    let output = Bin::new(["generate", "x", "--size", "3000x3000", "--simulate"])
        .std()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a supported size") && stderr.contains("2560x1440(16:9)"),
        "{stderr}"
    );
    // Said once, as a plain line: not a log line and the same again.
    assert_eq!(stderr.matches("not a supported size").count(), 1, "{stderr}");
}

/// `--count` makes that many alternatives, as the tools' `count` does: each its own job and
/// file, and (the simulator drawing each job apart) each a different picture.
#[test]
fn generate_count_makes_that_many_alternatives() {
    let out = tempfile::tempdir().unwrap();
    let output = Bin::new([
        "generate",
        "a red fox",
        "--size",
        "1024x1024",
        "--count",
        "2",
        "--simulate",
    ])
    .args(["--poll-first-ms", "50", "--out"])
    .arg(out.path())
    .std()
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("job 1/2: request_id") && stderr.contains("job 2/2: request_id"),
        "{stderr}"
    );
    let paths = saved_paths(&output);
    assert_eq!(paths.len(), 2, "{paths:?}");
    let (a, b) = (std::fs::read(&paths[0]).unwrap(), std::fs::read(&paths[1]).unwrap());
    assert!(a.starts_with(b"\x89PNG") && b.starts_with(b"\x89PNG"));
    assert_ne!(a, b, "two jobs, two pictures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_a_queued_job() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 100,
        queue_step_ms: 1000,
        ..fast_config()
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut child = Bin::new(["generate", "a cat", "--poll-first-ms", "50", "--out"])
        .arg(out.path())
        .upstream(&sim.base_url())
        .tokio()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Output::follow(child.stdout.take().unwrap(), false);
    let stderr = Output::follow(child.stderr.take().unwrap(), true);
    // Interrupt as a person would: once the job is shown queued. That line comes after the first
    // status poll, by which time the command is listening for Ctrl-C.
    let id = Control::new(&sim).nth_job(1).await;
    stderr
        .line(|l| l.contains("queued at position"), "the job shown queued")
        .await;
    Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = within(child.wait(), "the command to exit after Ctrl-C").await.unwrap();
    let stderr = stderr.closed().await.join("\n");
    assert!(!status.success());
    assert!(stderr.contains("the job was cancelled"), "{stderr}");
    assert_eq!(Control::new(&sim).job(&id).await["status"], json!("cancelled"));
    assert!(stdout.closed().await.is_empty(), "no file was reported");
}
