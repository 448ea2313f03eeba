//! Which inputs of a model are media, read from its schema: RunComfy marks them with a `format`
//! (`image_uri`, `image_uris`, `video_uri(s)`, `audio_uri(s)`) whatever the field is called
//! (`image_urls` on Dreamina edit, `images` on Seedream 4.0 edit, `image` on Seedream 5): the
//! field name is never guessed from the model's family. Media fields nested in objects or lists
//! of objects (`{"refs": [{"image": …}]}`) are found too, so that they are resolved and checked
//! like top-level ones rather than sent upstream as given.

use serde_json::{Map, Value};

/// What a media input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// One media input of a model's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInput {
    /// The top-level property it is, or is inside, under RunComfy's own name.
    pub key: String,
    /// The way from that property down to the media field: empty for a top-level field.
    pub nested: Vec<Step>,
    pub kind: MediaKind,
    /// A list of media (`image_uris`, or an array whose items carry the format).
    pub many: bool,
    /// The field's own schema (its `validations` are checked on each value sent).
    pub property: Value,
}

/// One step down a schema (and the input it describes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object's property.
    Key(String),
    /// Every item of a list.
    Items,
}

/// One media entry found in an input: where it is and what was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// A JSON pointer to the string, for replacing it.
    pub pointer: String,
    /// Its path for messages, e.g. `refs[0].image` or `image_urls[1]`.
    pub label: String,
    pub entry: String,
}

/// How deep a schema is searched for media fields.
const MAX_DEPTH: usize = 8;
/// How many schema nodes one search visits at most: a schema whose references fan out cannot
/// make the search expensive (what is past the bound is not searched; RunComfy judges it).
const MAX_NODES: usize = 2_000;
/// How many media fields one schema yields at most.
const MAX_MEDIA_INPUTS: usize = 64;

/// The properties of `schema` that take media, top-level or nested, by name.
pub fn media_inputs(schema: &Value) -> Vec<MediaInput> {
    let mut search = Search {
        root: schema,
        found: Vec::new(),
        visited: 0,
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            search.walk(key, property, &mut Vec::new(), 0);
        }
    }
    search.found
}

struct Search<'a> {
    root: &'a Value,
    found: Vec<MediaInput>,
    visited: usize,
}

impl<'a> Search<'a> {
    fn walk(&mut self, key: &str, node: &'a Value, path: &mut Vec<Step>, depth: usize) {
        self.visited += 1;
        if depth > MAX_DEPTH || self.visited > MAX_NODES || self.found.len() >= MAX_MEDIA_INPUTS {
            return;
        }
        let node = self.follow(node);
        if let Some((kind, many)) = media_format(node) {
            self.found.push(MediaInput {
                key: key.to_owned(),
                nested: path.clone(),
                kind,
                many,
                property: node.clone(),
            });
            return;
        }
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                path.push(Step::Key(name.clone()));
                self.walk(key, property, path, depth + 1);
                path.pop();
            }
        }
        if let Some(items) = node.get("items").filter(|i| i.is_object()) {
            path.push(Step::Items);
            self.walk(key, items, path, depth + 1);
            path.pop();
        }
        for alternatives in ["anyOf", "oneOf", "allOf"] {
            for alternative in node.get(alternatives).and_then(Value::as_array).into_iter().flatten() {
                self.walk(key, alternative, path, depth + 1);
            }
        }
    }

    /// `node`, or what its local `$ref` (`#/$defs/…`, `#/definitions/…`) points at, a few hops at
    /// most; the walk's depth bound ends a cycle.
    fn follow(&self, mut node: &'a Value) -> &'a Value {
        for _ in 0..4 {
            let Some(target) = node.get("$ref").and_then(Value::as_str) else {
                break;
            };
            match target.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                Some(found) => node = found,
                None => break,
            }
        }
        node
    }
}

/// The media a schema node takes, and whether a list of it. The format may sit on the array's
/// items instead of the array.
fn media_format(node: &Value) -> Option<(MediaKind, bool)> {
    let items = node.get("items").filter(|i| i.is_object());
    let format = node
        .get("format")
        .or_else(|| items.and_then(|i| i.get("format")))
        .and_then(Value::as_str)?;
    let kind = match format.trim_end_matches('s') {
        "image_uri" => MediaKind::Image,
        "video_uri" => MediaKind::Video,
        "audio_uri" => MediaKind::Audio,
        _ => return None,
    };
    let many = format.ends_with('s') || items.is_some() || node.get("type").and_then(Value::as_str) == Some("array");
    Some((kind, many))
}

/// Every string `input` holds where `media` says, in order. Values of another type are left to
/// the schema check.
pub fn locate(input: &Map<String, Value>, media: &MediaInput) -> Vec<Located> {
    let mut out = Vec::new();
    if let Some(value) = input.get(&media.key) {
        let pointer = format!("/{}", escape(&media.key));
        collect(value, &media.nested, pointer, media.key.clone(), &mut out);
    }
    out
}

fn collect(value: &Value, path: &[Step], pointer: String, label: String, out: &mut Vec<Located>) {
    match (path.first(), value) {
        (None, Value::String(entry)) => out.push(Located {
            pointer,
            label,
            entry: entry.clone(),
        }),
        (None, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Value::String(entry) = item {
                    out.push(Located {
                        pointer: format!("{pointer}/{i}"),
                        label: format!("{label}[{i}]"),
                        entry: entry.clone(),
                    });
                }
            }
        }
        (Some(Step::Key(name)), Value::Object(object)) => {
            if let Some(inner) = object.get(name) {
                let pointer = format!("{pointer}/{}", escape(name));
                collect(inner, &path[1..], pointer, format!("{label}.{name}"), out);
            }
        }
        (Some(Step::Items), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, &path[1..], format!("{pointer}/{i}"), format!("{label}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A key as a JSON pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_inputs_are_found_by_format_whatever_their_name() {
        let schema = json!({"type": "object", "properties": {
            "prompt": {"type": "string"},
            "image": {"type": "array", "format": "image_uris"},
            "first_frame": {"type": "string", "format": "image_uri"},
            "clips": {"type": "array", "items": {"type": "string", "format": "video_uri"}},
            "voice": {"type": "string", "format": "audio_uri"},
            "site": {"type": "string", "format": "uri"},
        }});
        let found: Vec<(String, MediaKind)> = media_inputs(&schema)
            .into_iter()
            .filter(|m| m.nested.is_empty())
            .map(|m| (m.key, m.kind))
            .collect();
        assert_eq!(
            found,
            vec![
                ("clips".to_owned(), MediaKind::Video),
                ("first_frame".to_owned(), MediaKind::Image),
                ("image".to_owned(), MediaKind::Image),
                ("voice".to_owned(), MediaKind::Audio),
            ]
        );
    }

    #[test]
    fn nested_media_fields_are_found_and_located_in_the_input() {
        let schema = json!({"type": "object", "$defs": {"Ref": {"type": "object", "properties": {
            "image": {"type": "string", "format": "image_uri"}, "weight": {"type": "number"}}}},
        "properties": {
            "prompt": {"type": "string"},
            "refs": {"type": "array", "items": {"$ref": "#/$defs/Ref"}},
            "style": {"type": "object", "properties": {"board": {"type": "array", "format": "image_uris"}}},
        }});
        let found = media_inputs(&schema);
        assert_eq!(found.len(), 2, "{found:?}");
        let refs = found.iter().find(|m| m.key == "refs").unwrap();
        assert_eq!(refs.nested, [Step::Items, Step::Key("image".into())]);
        assert!(!refs.many);
        let input = json!({"refs": [{"image": "abc#1", "weight": 1}, {"weight": 2}, {"image": "/tmp/b.png"}],
                           "style": {"board": ["https://x.invalid/a.png"]}});
        let located: Vec<(String, String, String)> = found
            .iter()
            .flat_map(|m| locate(input.as_object().unwrap(), m))
            .map(|l| (l.pointer, l.label, l.entry))
            .collect();
        assert_eq!(
            located,
            [
                ("/refs/0/image".into(), "refs[0].image".into(), "abc#1".into()),
                ("/refs/2/image".into(), "refs[2].image".into(), "/tmp/b.png".into()),
                (
                    "/style/board/0".into(),
                    "style.board[0]".into(),
                    "https://x.invalid/a.png".into()
                ),
            ]
        );
    }

    #[test]
    fn a_recursive_or_fanned_out_schema_is_searched_within_bounds() {
        let schema = json!({"$defs": {"N": {"type": "object", "properties": {
                "a": {"$ref": "#/$defs/N"}, "b": {"$ref": "#/$defs/N"}, "c": {"$ref": "#/$defs/N"},
                "pic": {"type": "string", "format": "image_uri"}}}},
            "properties": {"root": {"$ref": "#/$defs/N"}}});
        let found = media_inputs(&schema);
        assert!(!found.is_empty() && found.len() <= MAX_MEDIA_INPUTS, "{}", found.len());
    }
}
