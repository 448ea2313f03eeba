//! Measures how much a result download raises this process's peak RSS: submits one job to a
//! running simulator, then runs `media::collect` on its image and reports VmHWM (peak resident
//! set) before and after, with the peak reset first (`/proc/self/clear_refs`). Linux only.
//!
//! ```sh
//! target/debug/runcomfy-mcp simulate --port 8799 &
//! curl -X PUT -H 'content-type: application/json' -d '{"image_style":"noise"}' http://127.0.0.1:8799/__sim/config
//! cargo run --example save_peak_rss -- http://127.0.0.1:8799 save      # save only, no preview
//! cargo run --example save_peak_rss -- http://127.0.0.1:8799 preview   # save and preview
//! ```

use std::time::Duration;

use runcomfy_mcp::media::{self, save::OutputDir, AddressPolicy, Downloader, MediaOptions};
use runcomfy_mcp::runcomfy::{ApiToken, Client, ClientConfig, JobStatus};
use serde_json::json;

// The tests' reader of /proc, shared by path.
#[allow(dead_code)]
#[path = "../tests/integration/common/proc.rs"]
mod proc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base_url = args.next().unwrap_or_else(|| "http://127.0.0.1:8799".into());
    let previews = args.next().as_deref() == Some("preview");
    let client = Client::new(ClientConfig {
        base_url: base_url.clone(),
        token: ApiToken::new("measure"),
        model: "bytedance/dreamina-4-0/text-to-image".into(),
        timeout: Duration::from_secs(120),
        retry: runcomfy_mcp::runcomfy::RetryPolicy::default(),
    })
    .map_err(anyhow::Error::msg)?;
    let id = client
        .submit(&json!({"prompt": "noise", "width\u{d7}height": "4096x4096(1:1)", "force_single": true}))
        .await?;
    let urls = loop {
        let answer = client.result(None, &id).await?;
        if answer.status == JobStatus::Succeeded {
            break answer.output.unwrap_or_default().image_urls();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let dir = tempfile::tempdir()?;
    let options = MediaOptions {
        output_dir: Some(OutputDir::prepare(dir.path().to_str().unwrap()).map_err(anyhow::Error::msg)?),
        previews,
        download_timeout: Duration::from_secs(120),
        ..MediaOptions::default()
    };

    proc::reset_own_peak();
    let before = proc::own_peak_kib();
    let downloader = Downloader::new(AddressPolicy::for_upstream(&base_url)).map_err(anyhow::Error::msg)?;
    let urls = media::OutputUrls {
        images: urls,
        ..media::OutputUrls::default()
    };
    let collected = media::collect(
        &downloader,
        &options,
        media::Request {
            name_stem: id.as_str(),
            urls: &urls,
            full_size: false,
        },
    )
    .await;
    let after = proc::own_peak_kib();
    let output = &collected.outputs[0];
    let bytes = output.bytes.unwrap_or(0);
    println!(
        "mode={} file={:.1} MB ({}x{}) saved={} problem={:?}",
        if previews { "save+preview" } else { "save" },
        bytes as f64 / 1e6,
        output.width.unwrap_or(0),
        output.height.unwrap_or(0),
        output.saved_path.is_some(),
        output.problem
    );
    println!(
        "peak RSS before {:.1} MB, during {:.1} MB: +{:.1} MB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0
    );
    Ok(())
}
