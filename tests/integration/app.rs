//! Result resources and the MCP Apps extension over stdio: result images read as resources by
//! any client, the view and the app-only tools only for a host that declares the extension, and
//! the app-only tools doing what their buttons say (a save costs nothing, a variation is one new
//! job with the same prompt).

use base64::Engine as _;
use rmcp::{
    model::{ReadResourceRequestParams, ResourceContents},
    service::RunningService,
    RoleClient,
};
use serde_json::{json, Value};

use crate::common::*;

const VIEWER: &str = "ui://runcomfy/viewer.html";

/// The first blob of a resource read, decoded, with its mime type.
async fn read_blob<H: rmcp::ClientHandler>(client: &RunningService<RoleClient, H>, uri: &str) -> (String, Vec<u8>) {
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("resources/read {uri}: {e}"));
    match &read.contents[0] {
        ResourceContents::BlobResourceContents { mime_type, blob, .. } => (
            mime_type.clone().unwrap_or_default(),
            base64::engine::general_purpose::STANDARD.decode(blob).unwrap(),
        ),
        other => panic!("{uri} is not a blob: {other:?}"),
    }
}

async fn finished_job<H: rmcp::ClientHandler>(client: &RunningService<RoleClient, H>, prompt: &str) -> String {
    let result = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_image_and_wait")
                .with_arguments(args(json!({ "prompt": prompt, "size": "1024x1024" }))),
        )
        .await
        .unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    structured(&result)["request_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn any_client_reads_result_images_as_resources_but_gets_no_view_or_app_tools() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let client = start_stdio((), Bin::serve().upstream(&sim.base_url()).journal_in(state.path()))
        .await
        .client;
    let id = finished_job(&client, "a lighthouse at dusk").await;

    let templates = client.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        uris,
        [
            "runcomfy://jobs/{request_id}/images/{n}",
            "runcomfy://jobs/{request_id}/previews/{n}"
        ]
    );

    let (mime, png) = read_blob(&client, &format!("runcomfy://jobs/{id}/images/1")).await;
    assert_eq!(mime, "image/png");
    let original = image::load_from_memory(&png).unwrap();
    assert_eq!((original.width(), original.height()), (1024, 1024));
    let (mime, jpeg) = read_blob(&client, &format!("runcomfy://jobs/{id}/previews/1")).await;
    assert_eq!(mime, "image/jpeg");
    let preview = image::load_from_memory(&jpeg).unwrap();
    assert!(preview.width() <= 768 && jpeg.len() <= 150 * 1024, "{}", jpeg.len());

    let listed = client.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|r| r.uri == format!("runcomfy://jobs/{id}/images/1")));
    assert!(
        listed.iter().all(|r| r.uri != VIEWER),
        "the view is listed only for app hosts"
    );

    // A job that has no second image, a stranger's URI and the view: clear refusals.
    for (uri, says) in [
        (format!("runcomfy://jobs/{id}/images/2"), "has 1 image"),
        ("runcomfy://jobs/x/videos/1".to_owned(), "not a resource of this server"),
        (VIEWER.to_owned(), "MCP Apps"),
    ] {
        let error = client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .expect_err(&uri);
        assert!(error.to_string().contains(says), "{uri}: {error}");
    }

    let tools = client.list_all_tools().await.unwrap();
    assert!(
        tools
            .iter()
            .all(|t| t.meta.as_ref().is_none_or(|m| !m.0.keys().any(|k| k.starts_with("ui")))),
        "no UI metadata without the extension"
    );
    assert!(!tools.iter().any(|t| t.name == "save_image" || t.name == "upload_image"));
    let hidden = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("save_image")
                .with_arguments(args(json!({ "request_id": id, "index": 1 }))),
        )
        .await;
    assert!(hidden.is_err(), "an app-only tool is unknown to other clients");
    assert_eq!(Control::new(&sim).jobs().await.len(), 1, "nothing was submitted");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_app_host_gets_the_view_and_its_buttons_work() {
    let sim = simulator(fast_config()).await;
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bin = Bin::serve()
        .upstream(&sim.base_url())
        .journal_in(state.path())
        .env("RUNCOMFY_OUTPUT_DIR", out.path());
    let client = start_stdio(app_host_config(), bin).await.client;

    let tools = client.list_all_tools().await.unwrap();
    let meta = |name: &str, key: &str| -> Value {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        tool.meta
            .as_ref()
            .and_then(|m| m.0.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ui = |name: &str| meta(name, "ui");
    for name in ["generate_image_and_wait", "get_result", "list_jobs"] {
        assert_eq!(
            ui(name),
            json!({ "resourceUri": VIEWER, "visibility": ["model", "app"] }),
            "{name}"
        );
        assert_eq!(
            meta(name, "ui/resourceUri"),
            json!(VIEWER),
            "{name}: the key older hosts read"
        );
    }
    for name in ["save_image", "upload_image"] {
        assert_eq!(ui(name)["visibility"], json!(["app"]), "{name}");
    }
    // The view's variation button calls the tool the model calls.
    assert_eq!(ui("generate_variations")["visibility"], json!(["model", "app"]));
    assert_eq!(ui("check_status"), Value::Null);

    let read = client
        .read_resource(ReadResourceRequestParams::new(VIEWER))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents {
        mime_type,
        text: html,
        meta,
        ..
    } = &read.contents[0]
    else {
        panic!("the view is text")
    };
    assert_eq!(mime_type.as_deref(), Some("text/html;profile=mcp-app"));
    assert!(html.contains("ui/initialize"));
    let csp = &meta.as_ref().unwrap().0["ui"]["csp"];
    assert_eq!(csp, &json!({ "connectDomains": [], "resourceDomains": [] }));

    let id = finished_job(&client, "a red kite over hills").await;
    let saved = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("save_image")
                .with_arguments(args(json!({ "request_id": id, "index": 1 }))),
        )
        .await
        .unwrap();
    assert!(!is_error(&saved), "{}", text(&saved));
    let path = structured(&saved)["saved_path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with(out.path().canonicalize().unwrap().to_str().unwrap()),
        "{path}"
    );
    image::open(&path).expect("the saved file is an image");
    assert_eq!(Control::new(&sim).jobs().await.len(), 1, "saving costs no job");

    let varied = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_variations")
                .with_arguments(args(json!({ "request_id": id, "count": 1 }))),
        )
        .await
        .unwrap();
    assert!(!is_error(&varied), "{}", text(&varied));
    let new_id = structured(&varied)["request_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    let control = Control::new(&sim);
    assert_eq!(control.jobs().await.len(), 2, "exactly one new job");
    let input = control.job(&new_id).await;
    assert_eq!(input["request"]["prompt"], "a red kite over hills", "{input}");

    let unknown = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_variations")
                .with_arguments(args(json!({ "request_id": "not-recorded-here" }))),
        )
        .await
        .unwrap();
    assert!(
        is_error(&unknown)
            && text(&unknown).contains("not recorded on this machine")
            && text(&unknown).contains("Nothing was sent"),
        "{}",
        text(&unknown)
    );
    assert_eq!(control.jobs().await.len(), 2);
    client.cancel().await.unwrap();
}

/// The answer of `tool` as JSON, with what differs from job to job (its ids, the simulator's
/// timestamps, the picture's bytes) replaced by placeholders.
async fn normalised<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> (String, String) {
    let result = client
        .call_tool(rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap();
    let id = result
        .structured_content
        .as_ref()
        .and_then(|s| s["request_id"].as_str())
        .unwrap_or("-")
        .to_owned();
    let mut value = serde_json::to_value(&result).unwrap();
    if let Some(structured) = value.get_mut("structuredContent").and_then(Value::as_object_mut) {
        structured.remove("created_at");
        structured.remove("finished_at");
    }
    without_picture_bytes(&mut value);
    (id.clone(), value.to_string().replace(&id, "ID"))
}

/// The simulator draws each job's own id into its picture, so the files' and previews' bytes
/// and byte counts differ from job to job; everything else about them is still compared.
fn without_picture_bytes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("image") {
                map.insert("data".into(), Value::from("PICTURE"));
            }
            for (key, item) in map.iter_mut() {
                if matches!(key.as_str(), "size" | "bytes") && item.is_number() {
                    *item = Value::from(0);
                } else {
                    without_picture_bytes(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_picture_bytes),
        Value::String(text) => *text = without_kilobytes(text),
        _ => {}
    }
}

/// "PNG, 23 KB" reads "PNG, N KB".
fn without_kilobytes(text: &str) -> String {
    let parts: Vec<&str> = text.split(" KB").collect();
    let last = parts.len() - 1;
    let parts: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let number = part.trim_end_matches(|c: char| c.is_ascii_digit());
            if i < last && number.len() < part.len() {
                format!("{number}N")
            } else {
                (*part).to_owned()
            }
        })
        .collect();
    parts.join(" KB")
}

/// The waiting tool answers an app host early (see the test above); what it looks up later is
/// the same for everyone.
#[tokio::test]
async fn results_looked_up_are_the_same_for_app_hosts_and_other_clients() {
    let sim = simulator(fast_config()).await;
    let plain = connect(&sim.base_url(), &[]).await;
    let host = connect_with(app_host_config(), &sim.base_url(), &[]).await;
    let generate = json!({ "prompt": "a quiet harbour", "size": "1024x1024", "force_single": true });
    let (plain_id, _) = normalised(&plain, "generate_image_and_wait", generate.clone()).await;
    let (host_id, _) = normalised(&host, "generate_image_and_wait", generate).await;
    assert_ne!(plain_id, host_id);
    for tool in ["get_result", "check_status"] {
        let (_, plain_answer) = normalised(&plain, tool, json!({ "request_id": plain_id })).await;
        let (_, host_answer) = normalised(&host, tool, json!({ "request_id": host_id })).await;
        assert_eq!(plain_answer, host_answer, "{tool}'s result");
    }
    plain.cancel().await.unwrap();
    host.cancel().await.unwrap();
}

/// A variation is a paid job like any other: the job limit refuses it, and nothing is sent.
#[tokio::test]
async fn a_variation_counts_against_the_job_limit() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve()
        .args(["--max-jobs-per-hour", "1"])
        .upstream(&sim.base_url())
        .journal_in(state.path());
    let client = start_stdio(app_host_config(), bin).await.client;
    let id = finished_job(&client, "a lone tree").await;
    let refused = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_variations")
                .with_arguments(args(json!({ "request_id": id, "count": 1 }))),
        )
        .await
        .unwrap();
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(text(&refused).contains("Job limit reached"), "{}", text(&refused));
    assert_eq!(sim.stats().submissions, 1, "nothing was sent");
    client.cancel().await.unwrap();
}

/// A JPEG of this size as a data URI, as the view sends a photo.
fn jpeg_uri(width: u32, height: u32) -> String {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([30, 120, 200]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

async fn call<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    client
        .call_tool(rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Issue 39 item 2: an image uploaded from the view (the app-only upload_image) is kept for its
/// caller and named upload:<id> in an edit's images, which sends it as a PNG data URI in exactly
/// one job; the view reads it back as a resource; a made-up reference or a file that is no image
/// are refused saying what to do, and nothing is paid for.
#[tokio::test]
async fn an_upload_from_the_view_is_edited_by_its_reference() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let client = start_stdio(
        app_host_config(),
        Bin::serve().upstream(&sim.base_url()).journal_in(state.path()),
    )
    .await
    .client;
    let tools = client.list_all_tools().await.unwrap();
    let upload_tool = tools
        .iter()
        .find(|t| t.name == "upload_image")
        .expect("listed for an app host");
    assert_eq!(upload_tool.meta.as_ref().unwrap().0["ui"]["visibility"], json!(["app"]));

    let uploaded = call(
        &client,
        "upload_image",
        json!({ "image": jpeg_uri(64, 48), "name": "holiday.jpg" }),
    )
    .await;
    assert!(!is_error(&uploaded), "{}", text(&uploaded));
    let reference = structured(&uploaded)["reference"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("upload:"), "{reference}");
    assert_eq!(structured(&uploaded)["width"], 64);
    assert!(text(&uploaded).contains(&reference) && text(&uploaded).contains("holiday.jpg"));
    assert!(state.path().join("uploads").is_dir(), "kept in the state directory");
    let (mime, png) = read_blob(
        &client,
        &format!("runcomfy://uploads/{}", &reference["upload:".len()..]),
    )
    .await;
    assert_eq!(
        (mime.as_str(), image::load_from_memory(&png).unwrap().width()),
        ("image/png", 64)
    );
    let control = Control::new(&sim);
    assert!(control.jobs().await.is_empty(), "an upload costs no job");

    let edit = call(
        &client,
        "generate_image",
        json!({ "prompt": "make it sunset", "images": [reference] }),
    )
    .await;
    assert!(!is_error(&edit), "{}", text(&edit));
    let jobs = control.jobs().await;
    assert_eq!(jobs.len(), 1, "exactly one job: {jobs:?}");
    let job = control.job(structured(&edit)["request_id"].as_str().unwrap()).await;
    let sent = job["request"]["image_urls"][0].as_str().unwrap_or_default();
    assert!(sent.starts_with("data:image/png;base64,"), "{job}");

    for (arguments, says) in [
        (
            json!({ "prompt": "p", "images": ["upload:0123456789abcdef0123456789abcdef"] }),
            "upload the image again",
        ),
        (
            json!({ "prompt": "p", "images": ["upload:../../etc"] }),
            "not an upload reference",
        ),
    ] {
        let refused = call(&client, "generate_image", arguments.clone()).await;
        assert!(
            is_error(&refused) && text(&refused).contains(says),
            "{arguments}: {}",
            text(&refused)
        );
    }
    let not_an_image = call(
        &client,
        "upload_image",
        json!({ "image": "data:image/png;base64,aGVsbG8=" }),
    )
    .await;
    assert!(
        is_error(&not_an_image) && text(&not_an_image).contains("PNG, JPEG or WebP"),
        "{}",
        text(&not_an_image)
    );
    assert_eq!(control.jobs().await.len(), 1, "nothing more was submitted");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_app_host_is_answered_once_the_urls_are_known_and_reads_the_image_its_view_shows() {
    let sim = simulator(fast_config()).await;
    // The image is slow to download: the answer must not wait for it.
    Control::new(&sim)
        .fault(json!({ "endpoint": "image", "delay_ms": 1500 }))
        .await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve().upstream(&sim.base_url()).journal_in(state.path());
    let client = start_stdio(app_host_config(), bin).await.client;
    let result = kite(&client).await;
    assert!(!is_error(&result), "{}", text(&result));
    let data = structured(&result);
    let id = data["request_id"].as_str().unwrap().to_owned();
    assert_eq!(data["status"], "succeeded");
    assert_eq!(
        data["outputs"][0]["reference"],
        format!("{id}#1"),
        "what the view shows"
    );
    assert!(data["outputs"][0].get("inline").is_none(), "{data}");
    assert!(
        result.content.iter().all(|c| c.as_image().is_none()),
        "no inline preview: the answer went before it was made"
    );
    let preview = format!("runcomfy://jobs/{id}/previews/1");
    assert!(
        result
            .content
            .iter()
            .any(|c| c.as_resource_link().is_some_and(|r| r.uri == preview)),
        "the model gets a link to the preview the view shows"
    );
    assert!(text(&result).contains("app view shows"), "{}", text(&result));
    let results_before_the_read = sim.stats().result_calls;

    // The view's read: served once made, by the one download the answer started.
    let (mime, jpeg) = read_blob(&client, &preview).await;
    assert_eq!(mime, "image/jpeg");
    assert!(image::load_from_memory(&jpeg).is_ok());
    assert_eq!(sim.stats().image_calls, 1, "the read joined the download under way");
    assert_eq!(
        sim.stats().result_calls,
        results_before_the_read,
        "the read used the URL the answer listed, without asking RunComfy again"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_client_without_the_view_still_gets_the_previews_inline() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve().upstream(&sim.base_url()).journal_in(state.path());
    let client = start_stdio((), bin).await.client;
    let result = kite(&client).await;
    assert!(
        result.content.iter().any(|c| c.as_image().is_some()),
        "{}",
        text(&result)
    );
    assert!(!text(&result).contains("app view shows"));
    client.cancel().await.unwrap();
}

async fn kite<H: rmcp::ClientHandler>(client: &RunningService<RoleClient, H>) -> rmcp::model::CallToolResult {
    client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("generate_image_and_wait")
                .with_arguments(args(json!({ "prompt": "a kite over dunes", "size": "1024x1024" }))),
        )
        .await
        .unwrap()
}
