//! The tool surface is a reviewed artifact: the whole `tools/list` answer is snapshot-tested, and
//! every schema is checked against what strict clients (Anthropic, Bedrock, Gemini) accept.

#[path = "integration/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;

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
