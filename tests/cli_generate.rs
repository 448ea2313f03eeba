//! `runcomfy-mcp generate` from a shell: real PNG files of the requested size, and Ctrl-C that
//! cancels a queued job.

mod common;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::json;

#[test]
fn generate_with_the_simulator_saves_real_pngs() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .env("RUNCOMFY_NO_JOURNAL", "true")
        .args([
            "generate",
            "a lighthouse, 'HELLO' painted on it",
            "--size",
            "2304x1728",
            "--simulate",
        ])
        .args(["--poll-first-ms", "50", "--out"])
        .arg(out.path())
        .env_remove("RUNCOMFY_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("request_id"), "{stderr}");
    let paths: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
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
    let output = Command::new(BIN)
        .env("RUNCOMFY_NO_JOURNAL", "true")
        .args(["generate", "x", "--size", "3000x3000", "--simulate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a supported size") && stderr.contains("2560x1440(16:9)"),
        "{stderr}"
    );
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
    let child = Command::new(BIN)
        .env("RUNCOMFY_NO_JOURNAL", "true")
        .args(["generate", "a cat", "--poll-first-ms", "50", "--out"])
        .arg(out.path())
        .env("RUNCOMFY_API_KEY", TOKEN)
        .env("RUNCOMFY_BASE_URL", sim.base_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the job exists, then interrupt as a person would.
    let id = Control::new(&sim).nth_job(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("the job was cancelled"), "{stderr}");
    assert_eq!(Control::new(&sim).job(&id).await["status"], json!("cancelled"));
    assert!(output.stdout.is_empty(), "no file was reported");
}
