//! Tool arguments are checked against the very schema `tools/list` gives the client (issue 38
//! item 4): each kind of broken rule comes back through a real `tools/call` as one `isError`
//! sentence naming the argument and the rule, before any request reaches RunComfy.

use serde_json::{json, Value};

use crate::common::*;

/// The schema `tools/list` gives for `tool`'s argument `name`.
async fn listed(client: &Client, tool: &str, name: &str) -> Value {
    let tools = client.list_all_tools().await.expect("tools/list");
    let tool = tools.iter().find(|t| t.name == tool).expect("the tool is listed");
    tool.input_schema["properties"][name].clone()
}

#[tokio::test]
async fn each_kind_of_broken_rule_is_one_sentence_naming_the_argument() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let cases = [
        // required
        ("generate_image", json!({}), "Invalid argument `prompt`: is missing; it is required"),
        // type
        (
            "generate_image",
            json!({"prompt": "x", "force_single": "yes"}),
            "Invalid argument `force_single`: is the string \"yes\"; it must be true or false",
        ),
        // minimum / maximum, with both bounds and the default
        (
            "generate_image",
            json!({"prompt": "x", "count": 9}),
            "Invalid argument `count`: is 9; it must be from 1 to 8 (default 1)",
        ),
        (
            "list_jobs",
            json!({"limit": 0}),
            "Invalid argument `limit`: is 0; it must be from 1 to 100 (default 10)",
        ),
        (
            "generate_image",
            json!({"prompt": "x", "scale": 1.5}),
            "Invalid argument `scale`: is 1.5; it must be from 0 to 1 (default 0.5)",
        ),
        // maxLength, counted in characters
        (
            "generate_image",
            json!({"prompt": "é".repeat(801)}),
            "Invalid argument `prompt`: has 801 characters; at most 800 are taken",
        ),
        // minLength
        (
            "generate_image",
            json!({"prompt": ""}),
            "Invalid argument `prompt`: must not be empty (at least 1 character)",
        ),
        // pattern, in words rather than a regex
        (
            "generate_image",
            json!({"prompt": "   "}),
            "Invalid argument `prompt`: is blank; it must hold some text",
        ),
        (
            "check_status",
            json!({"request_id": "../x"}),
            "Invalid argument `request_id`: is not a request_id: one holds only letters, digits, '-' and '_'",
        ),
        // enum
        (
            "list_jobs",
            json!({"status": "done"}),
            "Invalid argument `status`: is the string \"done\"; it must be one of: all, in_queue, in_progress, succeeded, failed, cancelled, submitting, unknown, rejected",
        ),
        (
            "generate_image",
            json!({"prompt": "x", "size": "3000x3000"}),
            "Invalid argument `size`: is the string \"3000x3000\"; it must be one of: 1024x1024(1:1), 2048x2048(1:1), 2304x1728(4:3), 2496x1664(3:2), 2560x1440(16:9), 3024x1296(21:9), 4096x4096(1:1), 4694x3520(4:3), 4992x3328(3:2), 5404x3040(16:9), 6198x2656(21:9). WIDTHxHEIGHT such as 2560x1440, or a ratio such as 16:9, is accepted too",
        ),
        // maxItems, and an entry of a list by its index
        (
            "generate_image",
            json!({"prompt": "x", "images": vec!["https://images.invalid/a.png"; 11]}),
            "Invalid argument `images`: has 11 entries; at most 10 are taken",
        ),
        (
            "generate_image",
            json!({"prompt": "x", "images": ["https://images.invalid/a.png", " "]}),
            "Invalid argument `images[1]`: is blank: give a value, or leave the entry out",
        ),
        // anyOf: no alternative has the value's type
        (
            "generate_image",
            json!({"prompt": "x", "images": [7]}),
            "Invalid argument `images[0]`: is the number 7; it must be a string or an object",
        ),
        // an argument the tool does not know
        (
            "generate_image",
            json!({"prompt": "x", "seed": 7}),
            "Invalid argument `seed`: is not an argument of this tool. Accepted arguments:",
        ),
    ];
    for (tool, arguments, says) in cases {
        let result = call(&client, tool, arguments.clone()).await;
        let text = text(&result);
        assert!(is_error(&result), "{tool} {arguments} was accepted: {text}");
        assert!(text.starts_with(says), "{tool} {arguments}:\n{text}\nwanted:\n{says}");
        assert!(
            text.ends_with("Nothing was sent to RunComfy; fix the argument and call again."),
            "{text}"
        );
    }
    let stats = sim.stats();
    assert_eq!(
        (stats.submissions, stats.status_calls),
        (0, 0),
        "nothing reached RunComfy"
    );
    client.cancel().await.unwrap();
}

/// Rules that were written by hand beside the schema are now stated only in it: the client sees
/// them in `tools/list`, and the check against that schema is what enforces them (without it,
/// serde would accept each of these calls).
#[tokio::test]
async fn rules_stated_only_in_the_listed_schema_are_enforced() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    assert_eq!(listed(&client, "list_models", "search").await["maxLength"], 500);
    assert_eq!(listed(&client, "generate_image", "prompt").await["pattern"], "\\S");
    assert_eq!(listed(&client, "generate_variations", "count").await["maximum"], 8);
    for (tool, arguments, field) in [
        ("list_models", json!({"search": "w".repeat(501)}), "search"),
        (
            "generate_image_and_wait",
            json!({"prompt": "x", "max_wait_seconds": 0}),
            "max_wait_seconds",
        ),
        ("generate_variations", json!({"request_id": "abc", "count": 9}), "count"),
        ("run_model", json!({"model_id": " ", "input": {}}), "model_id"),
    ] {
        let result = call(&client, tool, arguments.clone()).await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
        assert!(
            text(&result).starts_with(&format!("Invalid argument `{field}`")),
            "{tool}: {}",
            text(&result)
        );
    }
    assert_eq!(sim.stats().submissions, 0);
    client.cancel().await.unwrap();
}

/// What a model often sends beyond the schema's own spellings is read as what it means, and
/// still checked: a ratio for a size, 3.0 for 3, null for an argument left out.
#[tokio::test]
async fn other_spellings_are_read_then_checked() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let result = call(
        &client,
        "generate_image",
        json!({"prompt": "x", "size": "16:9", "count": 2.0, "scale": null}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["size"], "2560x1440(16:9)");
    assert_eq!(structured(&result)["request_ids"].as_array().map(Vec::len), Some(2));
    let result = call(&client, "generate_image", json!({"prompt": "x", "count": 2.5})).await;
    assert!(text(&result).starts_with("Invalid argument `count`: is the number 2.5; it must be a whole number"));
    client.cancel().await.unwrap();
}

/// A hostile value is bounded by the transport (serde_json refuses nesting past 128 levels) and
/// never copied into the answer; the check walks only as deep as the schema, and the server
/// keeps serving.
#[tokio::test]
async fn hostile_values_are_described_not_echoed_and_the_server_keeps_serving() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let mut deep = json!("x");
    // 120 levels: within what the transport parses.
    for _ in 0..60 {
        deep = json!({ "a": [deep] });
    }
    for (arguments, says) in [
        (
            json!({"prompt": "x", "force_single": "A".repeat(1_000_000)}),
            "is a string of 1000000 characters; it must be true or false",
        ),
        (
            json!({"prompt": "x", "count": deep.clone()}),
            "is an object; it must be a whole number",
        ),
        (
            json!({"prompt": "x", "images": [deep]}),
            "Invalid argument `images[0].download_url`: is missing",
        ),
    ] {
        let result = call(&client, "generate_image", arguments).await;
        let text = text(&result);
        assert!(is_error(&result) && text.contains(says), "{text:.300}");
        assert!(text.len() < 500, "the value is not echoed ({} bytes)", text.len());
    }
    submit(&client, json!({"prompt": "still serving"})).await;
    client.cancel().await.unwrap();
}
