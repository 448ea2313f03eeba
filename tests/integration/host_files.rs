//! Issue 39 item 2: a file ChatGPT hands a tool. The image tools list `images` in
//! `_meta["openai/fileParams"]`, and an entry of `images` may be the object ChatGPT fills in,
//! `{download_url, file_id, mime_type?, file_name?}`: the server downloads it under the download
//! policy and sends the image itself (the URL, which lasts minutes, is kept nowhere). The file
//! server here is the test's own on 127.0.0.1, allowed only through the test-only
//! RUNCOMFY_MCP_TEST_FILE_ORIGIN; any other loopback origin stays refused.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Serves `body` as image/png to every request on 127.0.0.1; answers with its origin.
async fn file_server(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    origin
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([10, 160, 90]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

async fn edit<H: rmcp::ClientHandler>(
    client: &rmcp::service::RunningService<rmcp::RoleClient, H>,
    image: Value,
) -> rmcp::model::CallToolResult {
    client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_image")
                .with_arguments(args(json!({ "prompt": "make it autumn", "images": [image] }))),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_chatgpt_file_argument_edits_the_image_it_names() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let origin = file_server(png(80, 60)).await;
    let bin = Bin::serve()
        .upstream(&sim.base_url())
        .journal_in(state.path())
        .env("RUNCOMFY_MCP_TEST_FILE_ORIGIN", &origin);
    let client = start_stdio((), bin).await.client;

    let tools = client.list_all_tools().await.unwrap();
    for name in ["generate_image", "generate_image_and_wait"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let meta = tool.meta.as_ref().map(|m| m.0.clone()).unwrap_or_default();
        assert_eq!(meta.get("openai/fileParams"), Some(&json!(["images"])), "{name}");
    }

    let file = json!({
        "download_url": format!("{origin}/files/file_abc?sig=short-lived"),
        "file_id": "file_abc",
        "mime_type": "image/png",
        "file_name": "me.png",
    });
    let result = edit(&client, file).await;
    assert!(!is_error(&result), "{}", text(&result));
    let control = Control::new(&sim);
    assert_eq!(control.jobs().await.len(), 1, "exactly one job");
    let id = structured(&result)["request_id"].as_str().unwrap().to_owned();
    let job = control.job(&id).await;
    let sent = job["request"]["image_urls"][0].as_str().unwrap_or_default();
    assert!(
        sent.starts_with("data:image/png;base64,"),
        "the image itself is sent: {job}"
    );
    let journaled = std::fs::read_dir(state.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal"))
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
        .collect::<String>();
    assert!(journaled.contains("upload:"), "the job's recipe names the kept copy");
    assert!(
        !journaled.contains("sig=short-lived"),
        "the download URL is kept nowhere"
    );

    // Another loopback origin than the allowed one, the mobile placeholder, a broken object:
    // refused before anything is submitted, each saying what to do.
    let elsewhere = json!({ "download_url": "http://127.0.0.1:9/x.png", "file_id": "file_x" });
    for (image, says) in [
        (elsewhere, "Attach it again"),
        (json!("chat_upload"), "Attach the image again"),
        (json!({ "file_id": "file_y" }), "images"),
    ] {
        let refused = edit(&client, image.clone()).await;
        assert!(
            is_error(&refused) && text(&refused).contains(says),
            "{image}: {}",
            text(&refused)
        );
    }
    assert_eq!(control.jobs().await.len(), 1, "nothing more was submitted");
    client.cancel().await.unwrap();
}
