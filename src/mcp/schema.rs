//! Tool schemas derived from the Rust types with schemars, made self-contained: subschemas are
//! inlined (many clients mishandle `$ref`/`$defs`), and `$schema` and the root title are dropped
//! (Gemini rejects `$schema`; the title is only the Rust type's name).

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use rmcp::model::JsonObject;
use schemars::{generate::SchemaSettings, JsonSchema};

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
    let generator = settings.with(|s| s.inline_subschemas = true).into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let serde_json::Value::Object(mut object) = schema.to_value() else {
        unreachable!("schemars always produces an object schema for a struct");
    };
    object.remove("$schema");
    object.remove("title");
    object.remove("description");
    Arc::new(object)
}

/// The property names a schema declares: the only argument names a tool accepts.
pub fn property_names(schema: &JsonObject) -> Vec<String> {
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
