//! RunComfy's model catalogue as RunComfy serves it (issue 40) and as a broken or hostile upstream
//! might (issue 34), through the real binary: the media type read from `categories` (`kind` is
//! always "model"), pages read to `total` whatever their size, RunComfy's schema dialect enforced
//! before anything is sent, and bounds on everything the catalogue sends: entries, bytes, one
//! oversized entry, a recursive schema, an absurd model id.

use crate::common::{http::HttpServer, *};
use serde_json::{json, Value};

const DREAMINA: &str = "bytedance/dreamina-4-0/text-to-image";
const SEEDREAM5: &str = "bytedance/seedream-5.0-pro/image-to-image";

/// The simulator's catalogue as a client reads it, all in one page.
async fn served(sim: &runcomfy_mcp::simulator::Simulator) -> Value {
    reqwest::Client::new()
        .get(format!("{}/v1/models?include_schema=true&limit=100", sim.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Issue 40, finding 2: RunComfy's `kind` is always "model"; `list_models(kind="image")` must
/// read the media type from the categories.
#[tokio::test]
async fn kind_is_read_from_the_categories_as_runcomfy_serves_them() {
    let sim = simulator(fast_config()).await;
    let catalogue = served(&sim).await;
    let entries = catalogue["models"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["kind"] == "model"),
        "the simulator serves kind as RunComfy does: {catalogue}"
    );
    let client = connect(&sim.base_url(), &[]).await;
    let images = call(&client, "list_models", json!({"kind": "image", "limit": 100})).await;
    assert!(!is_error(&images), "{}", text(&images));
    let listed = structured(&images)["models"].as_array().unwrap().clone();
    assert!(listed.iter().any(|m| m["model_id"] == DREAMINA), "{listed:?}");
    assert!(listed.iter().all(|m| m["kind"] == "image"), "{listed:?}");
    let videos = call(&client, "list_models", json!({"kind": "video"})).await;
    let videos = structured(&videos)["models"].as_array().unwrap().clone();
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(videos[0]["model_id"], "bytedance/seedance-2.5/text-to-video/1080p");
    client.cancel().await.unwrap();
}

/// Issue 40, finding 8: RunComfy publishes no page size; a page shorter than asked for is not
/// the end of the catalogue, its `total` is.
#[tokio::test]
async fn a_catalogue_served_in_short_pages_is_read_to_its_total() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim).config(json!({"catalogue": {"page_size": 3}})).await;
    let client = connect(&sim.base_url(), &[]).await;
    let all = call(&client, "list_models", json!({"limit": 100})).await;
    assert!(!is_error(&all), "{}", text(&all));
    assert_eq!(structured(&all)["total"], 8, "{}", text(&all));
    let audio = call(
        &client,
        "describe_model",
        json!({"model_id": "minimax/speech-2.6/text-to-audio"}),
    )
    .await;
    assert!(!is_error(&audio), "the last page's model is known: {}", text(&audio));
    client.cancel().await.unwrap();
}

/// Issue 40, finding 7: Dreamina's published schema spells `scale` as `"type": "float"`; the
/// validator failed to compile it and sent every input unchecked.
#[tokio::test]
async fn runcomfys_float_type_is_enforced_before_anything_is_sent() {
    let sim = simulator(fast_config()).await;
    let catalogue = served(&sim).await;
    let dreamina = catalogue["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model_id"] == DREAMINA)
        .unwrap()
        .clone();
    assert_eq!(
        dreamina["input_schema"]["properties"]["scale"]["type"], "float",
        "as RunComfy's own page for the model"
    );
    let client = connect(&sim.base_url(), &[]).await;
    for scale in [json!("high"), json!(2)] {
        let refused = call(
            &client,
            "run_model",
            json!({"model_id": DREAMINA, "input": {"prompt": "x", "scale": scale}}),
        )
        .await;
        assert!(is_error(&refused), "{}", text(&refused));
        assert!(text(&refused).contains("input.scale"), "{}", text(&refused));
        assert!(text(&refused).contains("Nothing was submitted"), "{}", text(&refused));
    }
    assert_eq!(sim.stats().submissions, 0, "nothing reached RunComfy");
    let described = call(&client, "describe_model", json!({"model_id": DREAMINA})).await;
    assert_eq!(
        structured(&described)["input_schema"]["properties"]["scale"]["type"],
        "number",
        "described in standard JSON Schema"
    );
    client.cancel().await.unwrap();
}

/// A PNG of this size as a data URI.
fn png_uri(width: u32, height: u32) -> String {
    use base64::Engine as _;
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 40]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Issue 40, finding 7: a media field's `validations` (Seedream 5.0 Pro: pixels, aspect ratio,
/// file size) are enforced on the image as sent, in the rule's own words.
#[tokio::test]
async fn a_media_fields_validations_are_enforced_in_the_schemas_words() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let refused = call(
        &client,
        "run_model",
        json!({"model_id": SEEDREAM5, "wait": false, "input": {"prompt": "x", "image": [png_uri(64, 10)]}}),
    )
    .await;
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("The uploaded image width and height must exceed 14 pixels."),
        "{}",
        text(&refused)
    );
    assert_eq!(sim.stats().submissions, 0, "nothing reached RunComfy");
    let fine = call(
        &client,
        "run_model",
        json!({"model_id": SEEDREAM5, "wait": false, "input": {"prompt": "x", "image": [png_uri(64, 48)]}}),
    )
    .await;
    assert!(!is_error(&fine), "{}", text(&fine));
    client.cancel().await.unwrap();
}

/// A model whose schema has one definition with three properties that each refer back to it:
/// inlined to depth 16 it was 3^16 nodes (18 GB, or an abort under a memory cap).
fn recursive_model() -> Value {
    json!({
        "model_id": "acme/fractal/text-to-image",
        "display_name": "Fractal",
        "categories": ["text-to-image"],
        "kind": "model",
        "base_price_usd": 0.01,
        "price_unit": "output",
        "input_schema": {
            "type": "object",
            "$defs": {"Node": {"type": "object", "properties": {
                "a": {"$ref": "#/$defs/Node"}, "b": {"$ref": "#/$defs/Node"}, "c": {"$ref": "#/$defs/Node"}
            }}},
            "properties": {"prompt": {"type": "string"}, "tree": {"$ref": "#/$defs/Node"}},
            "required": ["prompt"]
        }
    })
}

/// Issue 34, finding 1: a recursive, fanned-out `$ref` is expanded once on its own path; the
/// model is described and run, and the server keeps serving.
#[tokio::test]
async fn a_recursive_schema_is_described_and_run_and_the_server_keeps_serving() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim)
        .config(json!({"catalogue": {"extra_models": [recursive_model()]}}))
        .await;
    let client = connect(&sim.base_url(), &[]).await;
    let described = call(
        &client,
        "describe_model",
        json!({"model_id": "acme/fractal/text-to-image"}),
    )
    .await;
    assert!(!is_error(&described), "{}", text(&described));
    let schema = structured(&described)["input_schema"].to_string();
    assert!(schema.len() < 4_000, "{} bytes", schema.len());
    assert!(schema.contains("Recursive"), "{schema}");
    let run = call(
        &client,
        "run_model",
        json!({"model_id": "acme/fractal/text-to-image", "wait": false,
               "input": {"prompt": "x", "tree": {"a": {"b": {}}}}}),
    )
    .await;
    // The simulator runs only its own eight models: what matters is that the call is answered.
    assert!(!text(&run).is_empty());
    let refused = call(
        &client,
        "run_model",
        json!({"model_id": "acme/fractal/text-to-image", "input": {"prompt": "x", "tree": {"a": 5}}}),
    )
    .await;
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("input.tree.a"),
        "checked against the recursive schema: {}",
        text(&refused)
    );
    let still = call(&client, "list_models", json!({})).await;
    assert!(!is_error(&still), "{}", text(&still));
    client.cancel().await.unwrap();
}

/// Issue 34, finding 4: a catalogue of a million models is refused, saying so, instead of being
/// read (or silently cut at the first 5,000).
#[tokio::test]
async fn a_million_entry_catalogue_is_refused_with_a_clear_message() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim)
        .config(json!({"catalogue": {"filler_models": 1_000_000}}))
        .await;
    let client = connect(&sim.base_url(), &[]).await;
    let listed = call(&client, "list_models", json!({})).await;
    assert!(is_error(&listed), "{}", text(&listed));
    let said = text(&listed);
    assert!(said.contains("larger than this server reads"), "{said}");
    assert!(said.contains("1000008 models"), "{said}");
    // Dreamina's own tools need no catalogue.
    let image = call(&client, "generate_image", json!({"prompt": "x", "force_single": true})).await;
    assert!(!is_error(&image), "{}", text(&image));
    client.cancel().await.unwrap();
}

/// Issue 34, finding 4: one entry too large for an answer (here a 5 MB description) costs that
/// entry, not the whole catalogue.
#[tokio::test]
async fn one_oversized_entry_is_skipped_and_the_rest_are_read() {
    let sim = simulator(fast_config()).await;
    let mut huge = recursive_model();
    huge["model_id"] = json!("acme/huge/text-to-image");
    Control::new(&sim)
        .config(json!({"catalogue": {"extra_models": [huge], "extra_model_bytes": 5 * 1024 * 1024}}))
        .await;
    let client = connect(&sim.base_url(), &[]).await;
    let listed = call(&client, "list_models", json!({"limit": 100})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    assert_eq!(structured(&listed)["total"], 8, "{}", text(&listed));
    client.cancel().await.unwrap();
}

/// Issue 34, finding 3: a 1 MB model id is refused before any work, and the server (one async
/// worker over HTTP) keeps answering `/healthz`.
#[tokio::test]
async fn a_huge_model_id_is_refused_at_once_and_healthz_still_answers() {
    let sim = simulator(fast_config()).await;
    let server = HttpServer::start(&sim.base_url(), &["--stateless"], &[]).await;
    let http = reqwest::Client::new();
    let huge = "bytedance/".repeat(100_000);
    for (tool, args) in [
        ("describe_model", json!({"model_id": huge})),
        ("run_model", json!({"model_id": huge, "input": {"prompt": "x"}})),
    ] {
        let answer = http::call_tool(&http, &server, 1, tool, args).await;
        let said = answer["content"][0]["text"].as_str().unwrap_or_default().to_owned();
        assert_eq!(answer["isError"], json!(true), "{tool}: {:.300}", answer.to_string());
        assert!(said.contains("at most 200"), "{tool}: {said:.300}");
        assert!(
            said.len() < 1_000,
            "{tool}: the id is not echoed back ({} bytes)",
            said.len()
        );
        let health = http.get(server.url("/healthz")).send().await.unwrap();
        assert!(health.status().is_success());
    }
    server.stop().await;
}

/// The binary with a journal in `dir` and these flags.
async fn server_with(sim: &runcomfy_mcp::simulator::Simulator, dir: &std::path::Path, flags: &[&str]) -> Client {
    let bin = Bin::serve().args(flags).upstream(&sim.base_url()).journal_in(dir);
    start_stdio((), bin).await.client
}

/// Issue 34, finding 6: a catalogue price of 0 made every estimate $0, and 30 of 30 extra
/// submits went through a $0.50 limit. A price of 0 or below is not known: under a spend limit
/// the job is refused, saying why, and nothing is sent.
#[tokio::test]
async fn a_zero_price_is_unknown_and_refused_under_a_spend_limit() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        price_usd_per_image: 0.0,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let client = server_with(&sim, state.path(), &["--max-spend-usd-per-day", "0.50"]).await;
    for tool_call in [
        ("generate_image", json!({"prompt": "a fox", "force_single": true})),
        (
            "run_model",
            json!({"model_id": DREAMINA, "wait": false, "input": {"prompt": "a fox", "force_single": true}}),
        ),
    ] {
        let refused = call(&client, tool_call.0, tool_call.1).await;
        assert!(is_error(&refused), "{}: {}", tool_call.0, text(&refused));
        assert!(text(&refused).contains("price of 0"), "{}", text(&refused));
    }
    assert_eq!(sim.stats().submissions, 0, "nothing reached RunComfy");
    client.cancel().await.unwrap();
}

/// Issue 40, finding 13: RunComfy has price units besides output and second. One this server
/// cannot estimate is an unknown estimate that names the unit; under a spend limit the job is
/// refused and nothing is sent, without one it runs.
#[tokio::test]
async fn an_unknown_price_unit_is_an_unknown_estimate_that_names_it() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim)
        .config(json!({"catalogue": {"price_unit": "megapixel"}}))
        .await;
    let model = "google/nano-banana-2-lite/text-to-image";
    let state = tempfile::tempdir().unwrap();
    let limited = server_with(&sim, state.path(), &["--max-spend-usd-per-day", "5"]).await;
    let refused = call(
        &limited,
        "run_model",
        json!({"model_id": model, "wait": false, "input": {"prompt": "a fox"}}),
    )
    .await;
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("priced per \"megapixel\", a unit this server cannot estimate"),
        "{}",
        text(&refused)
    );
    assert_eq!(sim.stats().submissions, 0);
    limited.cancel().await.unwrap();

    let open = connect(&sim.base_url(), &[]).await;
    let ran = call(
        &open,
        "run_model",
        json!({"model_id": model, "wait": false, "input": {"prompt": "a fox"}}),
    )
    .await;
    assert!(!is_error(&ran), "{}", text(&ran));
    assert!(structured(&ran).get("estimated_cost_usd").is_none(), "{}", text(&ran));
    open.cancel().await.unwrap();
}

/// Build 2 of issue 40: one lock was held across every price read, so on a shared server every
/// estimate queued behind one slow read. Reads are single-flight per model: a slow read of one
/// model's price does not hold up another's.
#[tokio::test]
async fn a_slow_price_read_for_one_model_does_not_hold_up_another() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    let client = connect(&sim.base_url(), &[]).await;
    // The catalogue is read first, so that the next read of the model endpoint is a price.
    let listed = call(&client, "list_models", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    control
        .fault(json!({"endpoint": "model", "delay_ms": 20_000, "times": 1}))
        .await;
    let before = sim.stats().model_calls;
    let peer = client.peer().clone();
    let slow = tokio::spawn(async move {
        peer.call_tool(
            rmcp::model::CallToolRequestParams::new("run_model").with_arguments(args(json!({
                "model_id": "google/nano-banana-2-lite/text-to-image", "wait": false, "input": {"prompt": "a fox"}
            }))),
        )
        .await
    });
    eventually(
        async || match sim.stats().model_calls > before {
            true => Ok(()),
            false => Err(sim.stats().model_calls),
        },
        "the slow price read to start",
    )
    .await;
    let other = call(
        &client,
        "run_model",
        json!({"model_id": "minimax/speech-2.6/text-to-audio", "wait": false, "input": {"text": "hello"}}),
    );
    tokio::select! {
        biased;
        done = slow => panic!("the slow model's call ended first: {done:?}"),
        other = other => assert!(!is_error(&other), "{}", text(&other)),
    }
    client.cancel().await.unwrap();
}
