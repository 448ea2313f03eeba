//! The tool surface is a reviewed artifact: the whole `tools/list` answer is snapshot-tested, and
//! every schema is checked against what strict clients (Anthropic, Bedrock, Gemini) accept.

#[path = "integration/common/mod.rs"]
mod common;

use common::*;
use serde_json::{json, Value};

async fn tools_list() -> Value {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    client.cancel().await.unwrap();
    serde_json::to_value(tools).unwrap()
}

/// tools/list as a host that renders MCP Apps views sees it.
async fn app_tools_list() -> Value {
    let sim = simulator(fast_config()).await;
    let client = connect_with(app_host_config(), &sim.base_url(), &[]).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    client.cancel().await.unwrap();
    serde_json::to_value(tools).unwrap()
}

/// A client without the MCP Apps extension: exactly the list from before the extension existed
/// (this snapshot is the one that predates it).
#[tokio::test]
async fn tools_list_snapshot() {
    insta::assert_json_snapshot!("tools_list", tools_list().await);
}

/// A host that renders views: the image tools and list_jobs link the view, and the app-only
/// tools of its buttons are listed for the view alone.
#[tokio::test]
async fn tools_list_for_app_hosts_snapshot() {
    insta::assert_json_snapshot!("tools_list_app", app_tools_list().await);
}

/// The prompts are reviewed like the tools: prompts/list, and what prompts/get writes for each
/// with its arguments given (and left out where they may be).
#[tokio::test]
async fn prompts_snapshot() {
    use rmcp::model::GetPromptRequestParams;
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let listed = client.list_all_prompts().await.expect("prompts/list");
    let mut got = serde_json::Map::new();
    for (name, arguments) in [
        (
            "exact_text",
            json!({"text": "GRAND OPENING", "design": "a shop-window poster"}),
        ),
        ("exact_text", json!({"text": "Café Lumière"})),
        (
            "consistent_set",
            json!({"subject": "a red panda detective", "count": "6", "style": "flat vector art"}),
        ),
        (
            "consistent_set",
            json!({"subject": "the mascot", "reference": "3f1c…#1"}),
        ),
        (
            "keep_identity_edit",
            json!({"image": "/photos/me.jpg", "change": "put me on a beach at sunset"}),
        ),
        (
            "product_shot",
            json!({"product": "a matte black ceramic mug", "image": "https://example.com/mug.jpg"}),
        ),
    ] {
        let prompt = client
            .get_prompt(GetPromptRequestParams::new(name).with_arguments(args(arguments.clone())))
            .await
            .unwrap_or_else(|e| panic!("prompts/get {name}: {e}"));
        got.insert(format!("{name} {arguments}"), serde_json::to_value(prompt).unwrap());
    }
    for (name, arguments, says) in [
        ("consistent_set", json!({"subject": "a cat", "count": "16"}), "2 to 15"),
        ("exact_text", json!({"text": "  "}), "text must not be empty"),
    ] {
        let refused = client
            .get_prompt(GetPromptRequestParams::new(name).with_arguments(args(arguments)))
            .await
            .expect_err("a bad argument is refused");
        assert!(refused.to_string().contains(says), "{refused}");
    }
    client.cancel().await.unwrap();
    insta::assert_json_snapshot!("prompts", json!({"list": listed, "get": got}));
}

#[tokio::test]
async fn schemas_are_portable_across_clients() {
    let tools = app_tools_list().await; // the longer list: every tool
    let key = regex_lite_key;
    for tool in tools.as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        assert!(
            name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{name}"
        );
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 40),
            "{name} needs a description"
        );
        assert!(tool["title"].is_string() && tool["annotations"].is_object(), "{name}");
        for schema_name in ["inputSchema", "outputSchema"] {
            let schema = &tool[schema_name];
            assert_eq!(schema["type"], "object", "{name}.{schema_name}");
            walk(schema, &mut |k, v| {
                assert!(
                    !["$ref", "$defs", "$schema", "definitions"].contains(&k),
                    "{name}.{schema_name} holds {k}"
                );
                // (an object here is a property that happens to be named `format`)
                if k == "format" && !v.is_object() {
                    assert!(
                        v.as_str().is_some_and(|f| JSON_SCHEMA_FORMATS.contains(&f)),
                        "{name}.{schema_name}: format {v} is not a JSON Schema 2020-12 format"
                    );
                }
                if k == "properties" {
                    for (property, spec) in v.as_object().unwrap() {
                        assert!(
                            key(property),
                            "{name}.{schema_name}: property key {property:?} is not portable"
                        );
                        if schema_name == "inputSchema" {
                            assert!(
                                spec["description"].as_str().is_some_and(|d| !d.is_empty()),
                                "{name}.{property} has no description"
                            );
                        }
                    }
                }
            });
        }
    }
}

/// The formats JSON Schema 2020-12 defines (Validation, section 7.3). Validators warn on any other
/// (the TypeScript SDK's ajv prints `unknown format "uint32" ignored in schema` for each).
const JSON_SCHEMA_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// `^[a-zA-Z0-9_.-]{1,64}$`, the rule Anthropic's API and Bedrock apply to property keys.
fn regex_lite_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn walk(value: &Value, f: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                f(k, v);
                walk(v, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}
