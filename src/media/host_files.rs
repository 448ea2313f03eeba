//! Files a host hands a tool: ChatGPT passes a file the person attached to a tool parameter the
//! tool lists in `_meta["openai/fileParams"]` (top-level parameters only), as an object
//! `{download_url, file_id, mime_type?, file_name?}` with a short-lived download URL (OpenAI's
//! Apps SDK reference). Its mobile apps have sent the string `"chat_upload"` instead.
//!
//! An entry of `images` may be such an object. It is read into the entry's one string form,
//! `openai-file:` and the object's JSON, so that everything downstream keeps taking strings; the
//! job service then downloads it under the download policy (https, public addresses, bounded in
//! size and time; a loopback origin only through the test-only [`TEST_ORIGIN_VAR`]) and sends it
//! as any uploaded image, never the URL (which expires in minutes, and is kept nowhere).

use schemars::{json_schema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

/// The tool `_meta` key that lists a tool's file parameters.
pub const FILE_PARAMS_KEY: &str = "openai/fileParams";
/// The string form of a host file entry.
const PREFIX: &str = "openai-file:";
/// What ChatGPT's mobile apps have sent in place of an attached file.
pub const MOBILE_UPLOAD: &str = "chat_upload";
/// Test-only: an `http://127.0.0.1:PORT` origin host files may also come from (a test's own
/// file server). Never set it in production: it lets a caller make the server fetch from that
/// local origin.
pub const TEST_ORIGIN_VAR: &str = "RUNCOMFY_MCP_TEST_FILE_ORIGIN";

/// A file as ChatGPT hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFile {
    pub download_url: String,
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

impl HostFile {
    /// How it is named to the person and the model: its name and id, never the URL.
    pub fn shown(&self) -> String {
        let name = self
            .file_name
            .as_deref()
            .map(|n| format!("{} ", crate::text::ellipsis(n, 60)));
        format!(
            "the attached file {}({})",
            name.unwrap_or_default(),
            crate::text::ellipsis(&self.file_id, 60)
        )
    }
}

/// A tool's `_meta` that lists `images` as a file parameter, for ChatGPT.
pub fn file_params_meta() -> rmcp::model::MetaObject {
    let mut meta = rmcp::model::JsonObject::new();
    meta.insert(FILE_PARAMS_KEY.to_owned(), serde_json::json!(["images"]));
    rmcp::model::MetaObject(meta)
}

/// An entry as given: a string, or a host's file object.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Text(String),
    File(HostFile),
}

/// `images` read from a tool's arguments: each entry a string or a host file object (kept as its
/// string form).
pub fn entries<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let entries = Vec::<Entry>::deserialize(deserializer)?;
    Ok(entries
        .into_iter()
        .map(|entry| match entry {
            Entry::Text(text) => text,
            // Serialising a struct of strings cannot fail.
            Entry::File(file) => format!("{PREFIX}{}", serde_json::to_string(&file).unwrap_or_default()),
        })
        .collect())
}

/// An entry's item schema: a reference string, or the file object a host fills in.
pub fn entries_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "anyOf": [
                { "type": "string", "pattern": crate::schema_check::NOT_BLANK },
                {
                    "type": "object",
                    "description": "A file the person attached, as ChatGPT passes it (filled in by ChatGPT).",
                    "properties": {
                        "download_url": { "type": "string", "description": "The short-lived URL of the file." },
                        "file_id": { "type": "string", "description": "The host's id of the file." },
                        "mime_type": { "type": "string", "description": "The file's type, when known." },
                        "file_name": { "type": "string", "description": "The file's name, when known." }
                    },
                    "required": ["download_url", "file_id"]
                }
            ]
        }
    })
}

/// The host file an entry names; `None` when it is no host file entry, `Err` (saying what to do)
/// when it is one that cannot be used.
pub fn parse(entry: &str) -> Option<Result<HostFile, String>> {
    let entry = entry.trim();
    if entry == MOBILE_UPLOAD {
        return Some(Err(format!(
            "is {MOBILE_UPLOAD:?}: ChatGPT's mobile app sent a placeholder instead of the attached image. Attach the image again from ChatGPT on the web or the desktop app, or give it as an https:// URL"
        )));
    }
    let json = entry.strip_prefix(PREFIX)?;
    Some(
        serde_json::from_str::<HostFile>(json)
            .map_err(|_| "is not a file object {download_url, file_id, mime_type?, file_name?}".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_object_and_strings_read_into_strings_and_back() {
        #[derive(Deserialize)]
        struct Args {
            #[serde(deserialize_with = "entries")]
            images: Vec<String>,
        }
        let file =
            serde_json::json!({"download_url": "https://files.example/a", "file_id": "file_1", "file_name": "me.jpg"});
        let args: Args = serde_json::from_value(serde_json::json!({"images": ["abc#2", file]})).unwrap();
        assert_eq!(args.images[0], "abc#2");
        let read = parse(&args.images[1]).unwrap().unwrap();
        assert_eq!(
            (read.file_id.as_str(), read.download_url.as_str()),
            ("file_1", "https://files.example/a")
        );
        assert_eq!(read.shown(), "the attached file me.jpg (file_1)");
        assert!(!read.shown().contains("https"), "the URL is never shown");
        assert!(parse("abc#2").is_none());
        let refused: Result<Args, _> = serde_json::from_value(serde_json::json!({"images": [{"file_id": "x"}]}));
        assert!(refused.is_err(), "an object without its download_url");
    }

    #[test]
    fn the_mobile_placeholder_says_what_to_do() {
        let why = parse(" chat_upload ").unwrap().unwrap_err();
        assert!(
            why.contains("Attach the image again") && why.contains("https://"),
            "{why}"
        );
    }
}
