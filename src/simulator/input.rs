//! Validation of the Dreamina 4.0 input, text-to-image and edit, as the real API would judge it.
//!
//! The simulator keeps its own copy of the rules (it shares no code with the client) so that a
//! client bug that lets bad input through is caught here with the upstream's 422 shape:
//! pydantic-style `detail` entries with `loc`, `msg` and `type`, all problems reported at once.
//! An edit's `image_urls` must be a list of 1 to 10 entries, each an http(s) URL or a data URI
//! holding a PNG, JPEG or WebP image of at most 6 MiB and 32 megapixels (the Model API's
//! per-input limits as RunComfy's own client states and enforces them; the size is read from
//! the header, never by decoding); the images are kept for drawing the result.

use std::io::Cursor;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// The text-to-image model this simulator serves.
pub(crate) const MODEL_ID: &str = "bytedance/dreamina-4-0/text-to-image";
/// The edit model this simulator serves.
pub(crate) const EDIT_MODEL_ID: &str = "bytedance/dreamina-4-0/edit";
/// The most reference images an edit takes.
pub(crate) const MAX_IMAGE_URLS: usize = 10;
/// The most bytes one image input may have (decoded from its data URI).
pub(crate) const MAX_INPUT_BYTES: usize = 6 * 1024 * 1024;
/// The most pixels one image input may have.
pub(crate) const MAX_INPUT_PIXELS: u64 = 32_000_000;

/// The size key of the upstream schema; the `×` is U+00D7, not the letter x.
pub(crate) const SIZE_KEY: &str = "width\u{00D7}height";

/// The documented size values, in the vendor's order.
pub(crate) const SIZES: [&str; 11] = [
    "1024x1024(1:1)",
    "2048x2048(1:1)",
    "2304x1728(4:3)",
    "2496x1664(3:2)",
    "2560x1440(16:9)",
    "3024x1296(21:9)",
    "4096x4096(1:1)",
    "4694x3520(4:3)",
    "4992x3328(3:2)",
    "5404x3040(16:9)",
    "6198x2656(21:9)",
];

const DEFAULT_SIZE: &str = "2048x2048(1:1)";
const PROMPT_MAX_CHARS: usize = 800;

/// One entry of a 422 `detail` array.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Violation {
    pub(crate) loc: Vec<String>,
    pub(crate) msg: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

impl Violation {
    pub(crate) fn new(field: Option<&str>, msg: impl Into<String>, kind: &str) -> Violation {
        Violation::at(field.as_slice(), msg, kind)
    }

    /// A problem at `path` inside the body (empty: the body as a whole).
    pub(crate) fn at(path: &[impl AsRef<str>], msg: impl Into<String>, kind: &str) -> Violation {
        let mut loc = vec!["body".to_string()];
        loc.extend(path.iter().map(|p| p.as_ref().to_string()));
        Violation {
            loc,
            msg: msg.into(),
            kind: kind.to_string(),
        }
    }
}

/// What the job needs from a valid input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidInput {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) force_single: bool,
    /// An edit's reference images, in order; empty for text-to-image.
    pub(crate) images: Vec<Reference>,
}

/// One reference image of an edit, as received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reference {
    /// An http(s) URL, exactly as sent.
    Url(String),
    /// A data URI's decoded bytes, with their sniffed type and declared size.
    Data {
        mime_type: &'static str,
        bytes: axum::body::Bytes,
        width: u32,
        height: u32,
    },
}

impl Reference {
    /// What `/__sim/jobs/{id}` shows of it.
    pub(crate) fn summary(&self) -> Value {
        match self {
            Reference::Url(url) => serde_json::json!({ "kind": "url", "url": url }),
            Reference::Data {
                mime_type,
                bytes,
                width,
                height,
            } => serde_json::json!({
                "kind": "data_uri", "mime_type": mime_type, "bytes": bytes.len(), "width": width, "height": height
            }),
        }
    }
}

/// Which endpoint a submit reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    TextToImage,
    Edit,
}

/// Parses a submit body, which must be a JSON object, as every model's is.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Vec<Violation>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![Violation::new(None, format!("JSON decode error: {e}"), "json_invalid")])?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(vec![Violation::new(
            None,
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )]),
    }
}

/// Parses and validates a text-to-image submit body; unknown extra fields are ignored, as
/// upstream does.
#[cfg(test)]
pub(crate) fn validate(body: &[u8]) -> Result<(Value, ValidInput), Vec<Violation>> {
    validate_for(Endpoint::TextToImage, body)
}

/// Parses and validates a submit body for `endpoint`.
pub(crate) fn validate_for(endpoint: Endpoint, body: &[u8]) -> Result<(Value, ValidInput), Vec<Violation>> {
    let map = parse_object(body)?;
    let object = &map;
    let mut violations = Vec::new();
    check_prompt(object, &mut violations);
    let size = check_size(object, &mut violations);
    check_scale(object, &mut violations);
    let force_single = check_force_single(object, &mut violations);
    let images = match endpoint {
        Endpoint::TextToImage => Vec::new(),
        Endpoint::Edit => check_image_urls(object, &mut violations),
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    let (width, height) = size.map(parse_size).unwrap_or((2048, 2048));
    Ok((
        Value::Object(map),
        ValidInput {
            width,
            height,
            force_single,
            images,
        },
    ))
}

fn check_image_urls(object: &Map<String, Value>, out: &mut Vec<Violation>) -> Vec<Reference> {
    let field = "image_urls";
    let list = match object.get(field) {
        None => {
            out.push(Violation::new(Some(field), "Field required", "missing"));
            return Vec::new();
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            out.push(Violation::new(Some(field), "Input should be a valid list", "list_type"));
            return Vec::new();
        }
    };
    if list.is_empty() {
        out.push(Violation::new(
            Some(field),
            "List should have at least 1 item after validation, not 0",
            "too_short",
        ));
    }
    if list.len() > MAX_IMAGE_URLS {
        out.push(Violation::new(
            Some(field),
            format!(
                "List should have at most {MAX_IMAGE_URLS} items after validation, not {}",
                list.len()
            ),
            "too_long",
        ));
    }
    let mut references = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = |msg: String, kind: &str| {
            let mut v = Violation::new(Some(field), msg, kind);
            v.loc.push(i.to_string());
            v
        };
        match entry.as_str().map(reference) {
            Some(Ok(r)) => references.push(r),
            Some(Err(msg)) => out.push(at(msg, "value_error")),
            None => out.push(at("Input should be a valid string".to_owned(), "string_type")),
        }
    }
    references
}

/// An http(s) URL (not fetched here), or a data URI whose bytes are a PNG, JPEG or WebP image.
fn reference(entry: &str) -> Result<Reference, String> {
    let lower = entry.get(..8).unwrap_or(entry).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return match reqwest::Url::parse(entry) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(Reference::Url(entry.to_owned())),
            _ => Err("Value error, not a valid URL".to_owned()),
        };
    }
    if !lower.starts_with("data:") {
        return Err("Value error, expected an http(s) URL or a data URI".to_owned());
    }
    let (header, payload) = entry[5..].split_once(',').ok_or("Value error, malformed data URI")?;
    if !header.to_ascii_lowercase().ends_with(";base64") {
        return Err("Value error, data URI must be base64-encoded".to_owned());
    }
    // Judged from the payload's length first, so that an oversized URI is not decoded at all.
    if payload.trim().len() / 4 * 3 > MAX_INPUT_BYTES + 3 {
        return Err(too_large(payload.trim().len() / 4 * 3));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| format!("Value error, data URI is not valid base64: {e}"))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(too_large(bytes.len()));
    }
    let reader = image::ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| format!("Value error, cannot read the image: {e}"))?;
    let mime_type = match reader.format() {
        Some(image::ImageFormat::Png) => "image/png",
        Some(image::ImageFormat::Jpeg) => "image/jpeg",
        Some(image::ImageFormat::WebP) => "image/webp",
        _ => return Err("Value error, data URI is not a PNG, JPEG or WebP image".to_owned()),
    };
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| format!("Value error, the image cannot be decoded: {e}"))?;
    if u64::from(width) * u64::from(height) > MAX_INPUT_PIXELS {
        return Err(format!(
            "Value error, image is {width}x{height}; an input image may have at most {} megapixels",
            MAX_INPUT_PIXELS / 1_000_000
        ));
    }
    Ok(Reference::Data {
        mime_type,
        bytes: bytes.into(),
        width,
        height,
    })
}

fn too_large(bytes: usize) -> String {
    format!(
        "Value error, image is {:.1} MiB; an input image may be at most {} MiB",
        bytes as f64 / (1024.0 * 1024.0),
        MAX_INPUT_BYTES / (1024 * 1024)
    )
}

fn check_prompt(object: &Map<String, Value>, out: &mut Vec<Violation>) {
    let field = Some("prompt");
    match object.get("prompt") {
        None => out.push(Violation::new(field, "Field required", "missing")),
        Some(Value::String(s)) => {
            // The limit is in characters, not bytes: a multi-byte prompt of 800 chars is fine.
            let chars = s.chars().count();
            if chars == 0 {
                out.push(Violation::new(
                    field,
                    "String should have at least 1 character",
                    "string_too_short",
                ));
            } else if chars > PROMPT_MAX_CHARS {
                out.push(Violation::new(
                    field,
                    format!("String should have at most {PROMPT_MAX_CHARS} characters"),
                    "string_too_long",
                ));
            }
        }
        Some(_) => out.push(Violation::new(field, "Input should be a valid string", "string_type")),
    }
}

fn check_size<'a>(object: &'a Map<String, Value>, out: &mut Vec<Violation>) -> Option<&'a str> {
    match object.get(SIZE_KEY) {
        None => Some(DEFAULT_SIZE),
        Some(Value::String(s)) if SIZES.contains(&s.as_str()) => Some(s.as_str()),
        Some(_) => {
            let expected = SIZES.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
            out.push(Violation::new(
                Some(SIZE_KEY),
                format!("Input should be {expected}"),
                "enum",
            ));
            None
        }
    }
}

fn check_scale(object: &Map<String, Value>, out: &mut Vec<Violation>) {
    let field = Some("scale");
    match object.get("scale") {
        None => {}
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x < 0.0 => out.push(Violation::new(
                field,
                "Input should be greater than or equal to 0",
                "greater_than_equal",
            )),
            Some(x) if x > 1.0 => out.push(Violation::new(
                field,
                "Input should be less than or equal to 1",
                "less_than_equal",
            )),
            Some(_) => {}
            None => out.push(Violation::new(field, "Input should be a valid number", "float_type")),
        },
        Some(_) => out.push(Violation::new(field, "Input should be a valid number", "float_type")),
    }
}

fn check_force_single(object: &Map<String, Value>, out: &mut Vec<Violation>) -> bool {
    match object.get("force_single") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            out.push(Violation::new(
                Some("force_single"),
                "Input should be a valid boolean",
                "bool_type",
            ));
            false
        }
    }
}

/// `"2304x1728(4:3)"` → `(2304, 1728)`; only called on one of [`SIZES`].
fn parse_size(size: &str) -> (u32, u32) {
    let dims = size.split('(').next().unwrap_or(size);
    let mut parts = dims.split('x').map(|p| p.parse::<u32>().unwrap_or(1024));
    (parts.next().unwrap_or(1024), parts.next().unwrap_or(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_size_parses() {
        for size in SIZES {
            let (w, h) = parse_size(size);
            assert!(size.starts_with(&format!("{w}x{h}(")), "{size}");
        }
    }

    #[test]
    fn reports_all_violations() {
        let body = br#"{"scale": 2, "force_single": "yes", "width\u00d7height": "1x1"}"#;
        let errors = validate(body).unwrap_err();
        let kinds: Vec<_> = errors.iter().map(|v| v.kind.as_str()).collect();
        assert_eq!(kinds, ["missing", "enum", "less_than_equal", "bool_type"]);
    }

    #[test]
    fn defaults_apply() {
        let (_, input) = validate(br#"{"prompt":"a cat"}"#).unwrap();
        assert_eq!(
            input,
            ValidInput {
                width: 2048,
                height: 2048,
                force_single: false,
                images: Vec::new(),
            }
        );
    }

    #[test]
    fn edits_need_readable_image_urls() {
        let png = super::super::png::render(4, 3).unwrap();
        let data = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        let body = serde_json::json!({"prompt": "p", "image_urls": ["https://images.invalid/a.png", data]});
        let (_, input) = validate_for(Endpoint::Edit, body.to_string().as_bytes()).unwrap();
        assert_eq!(input.images[0], Reference::Url("https://images.invalid/a.png".into()));
        assert!(
            matches!(&input.images[1], Reference::Data { mime_type: "image/png", bytes, width: 4, height: 3 } if bytes.len() == png.len())
        );

        let kinds = |body: Value| -> Vec<(String, String)> {
            validate_for(Endpoint::Edit, body.to_string().as_bytes())
                .unwrap_err()
                .into_iter()
                .map(|v| (v.loc.join("."), v.kind))
                .collect()
        };
        assert_eq!(
            kinds(serde_json::json!({"prompt": "p"})),
            [("body.image_urls".into(), "missing".into())]
        );
        assert_eq!(
            kinds(serde_json::json!({"prompt": "p", "image_urls": []})),
            [("body.image_urls".into(), "too_short".into())]
        );
        let eleven = vec!["https://x.invalid/a.png"; 11];
        assert_eq!(
            kinds(serde_json::json!({"prompt": "p", "image_urls": eleven})),
            [("body.image_urls".into(), "too_long".into())]
        );
        let bad = serde_json::json!({"prompt": "p", "image_urls": [
            "ftp://x/y", "data:image/png;base64,@@", "data:image/png;base64,aGVsbG8=", 7, "https://"
        ]});
        let found = kinds(bad);
        let locs: Vec<&str> = found.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            locs,
            [
                "body.image_urls.0",
                "body.image_urls.1",
                "body.image_urls.2",
                "body.image_urls.3",
                "body.image_urls.4"
            ]
        );
        // Issue 40 finding 6 / issue 34 finding 8: RunComfy's per-input limits, judged without
        // decoding: more than 6 MiB, or a header declaring more than 32 megapixels.
        let uri = |bytes: &[u8]| {
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        };
        let mut big = png.to_vec();
        big.resize(MAX_INPUT_BYTES + 1, 0);
        let mut bomb = super::super::png::render(1, 1).unwrap().to_vec();
        // The IHDR's width and height, and its CRC (over the chunk type and data).
        bomb[16..20].copy_from_slice(&11_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&11_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        for (image, says) in [(big, "at most 6 MiB"), (bomb, "at most 32 megapixels")] {
            let body = serde_json::json!({"prompt": "p", "image_urls": [uri(&image)]});
            let refused = validate_for(Endpoint::Edit, body.to_string().as_bytes()).unwrap_err();
            assert!(refused[0].msg.contains(says), "{refused:?}");
        }
        // Text-to-image ignores the field, as upstream ignores unknown fields.
        assert!(validate(br#"{"prompt":"p","image_urls":7}"#).is_ok());
    }
}
