//! Tool schemas derived from the Rust types with schemars, made self-contained: subschemas are
//! inlined (many clients mishandle `$ref`/`$defs`), and `$schema` and the root title are dropped
//! (Gemini rejects `$schema`; the title is only the Rust type's name). Only JSON Schema's own
//! `format` values are kept: schemars' `uint32`, `double`, ... make the TypeScript SDK's validator
//! (most clients') print `unknown format "uint32" ignored in schema` for each one; the bounds they
//! stand for stay as `minimum`/`maximum`.

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use rmcp::model::JsonObject;
use schemars::{generate::SchemaSettings, transform::RecursiveTransform, JsonSchema, Schema};

/// Cached: argument parsing asks for the schema on every call.
pub fn schema_for<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    static CACHE: LazyLock<RwLock<HashMap<TypeId, Arc<JsonObject>>>> = LazyLock::new(Default::default);
    if let Some(schema) = CACHE.read().unwrap_or_else(|e| e.into_inner()).get(&TypeId::of::<T>()) {
        return schema.clone();
    }
    let schema = generate::<T>(SchemaSettings::draft2020_12());
    CACHE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(TypeId::of::<T>(), schema.clone());
    schema
}

/// For outputs: describes what `Serialize` writes (the input form describes what is accepted).
pub fn output_schema_for<T: JsonSchema>() -> Arc<JsonObject> {
    generate::<T>(SchemaSettings::draft2020_12().for_serialize())
}

fn generate<T: JsonSchema>(settings: SchemaSettings) -> Arc<JsonObject> {
    let generator = settings
        .with(|s| s.inline_subschemas = true)
        .with_transform(RecursiveTransform(drop_nonstandard_format))
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let serde_json::Value::Object(mut object) = schema.to_value() else {
        unreachable!("schemars always produces an object schema for a struct");
    };
    object.remove("$schema");
    object.remove("title");
    object.remove("description");
    Arc::new(object)
}

/// The formats JSON Schema 2020-12 defines (Validation, section 7.3).
const STANDARD_FORMATS: &[&str] = &[
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

/// Applied to every subschema by [`RecursiveTransform`], which only descends into schema keywords
/// (a property that happens to be named `format` is left alone).
fn drop_nonstandard_format(schema: &mut Schema) {
    let nonstandard = schema
        .get("format")
        .and_then(|f| f.as_str())
        .is_some_and(|f| !STANDARD_FORMATS.contains(&f));
    if nonstandard {
        schema.remove("format");
    }
}

/// The property names a schema declares: the only argument names a tool accepts.
pub fn property_names(schema: &JsonObject) -> Vec<String> {
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Inner {
        #[schemars(range(max = 100))]
        count: u64,
        #[schemars(url)]
        link: String,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Outer {
        width: Option<u32>,
        scale: f64,
        #[schemars(extend("format" = "date-time"))]
        at: String,
        items: Vec<Inner>,
    }

    #[test]
    fn nonstandard_formats_go_at_every_depth_and_standard_ones_and_bounds_stay() {
        let schema = Value::Object((*output_schema_for::<Outer>()).clone());
        let properties = &schema["properties"];
        assert_eq!(properties["width"]["format"], Value::Null, "{schema:#}");
        assert_eq!(properties["width"]["minimum"], json!(0));
        assert_eq!(properties["scale"]["format"], Value::Null);
        assert_eq!(properties["at"]["format"], "date-time");
        let inner = &properties["items"]["items"]["properties"];
        assert_eq!(inner["count"]["format"], Value::Null, "{schema:#}");
        assert_eq!(
            (&inner["count"]["minimum"], &inner["count"]["maximum"]),
            (&json!(0), &json!(100))
        );
        assert_eq!(inner["link"]["format"], "uri");
    }

    #[test]
    fn input_schemas_get_the_same_treatment() {
        let schema = schema_for::<Outer>();
        assert_eq!(schema["properties"]["width"].get("format"), None);
        assert_eq!(schema["properties"]["at"]["format"], "date-time");
    }
}
