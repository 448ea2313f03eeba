//! A job's outputs as RunComfy's models return them: the image, video and audio URLs, and every
//! other URL found anywhere in `output`.

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{lenient_string, lenient_strings};

/// A job's outputs: images, videos or audio, one or many of each, as RunComfy's models return
/// them, and every other URL anywhere in `output` (RunComfy's own CLI downloads every http(s) URL
/// it finds there): a model that names its output `mesh` or `result` must not lose it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Output {
    #[serde(default, deserialize_with = "lenient_string")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub images: Vec<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub video: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub videos: Vec<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub audio: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub audios: Vec<String>,
    /// Every other key of `output`, as sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// A URL found under another key of `output`, with the key it was under (the top-level one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherUrl {
    pub key: String,
    pub url: String,
}

/// URLs read from the other keys of one `output`, and how deep its JSON is walked: an upstream
/// answer is bounded in bytes, but a hostile one must not make a walk of millions of strings.
const MAX_OTHER_URLS: usize = 10_000;
const MAX_OTHER_DEPTH: usize = 16;

impl Output {
    /// Image URLs: `images` first, then `image` (RunComfy's own clients read them in that order),
    /// without duplicates.
    pub fn image_urls(&self) -> Vec<String> {
        merge(&self.images, self.image.as_ref())
    }

    pub fn video_urls(&self) -> Vec<String> {
        merge(&self.videos, self.video.as_ref())
    }

    pub fn audio_urls(&self) -> Vec<String> {
        merge(&self.audios, self.audio.as_ref())
    }

    /// Every http(s) URL under the other keys, in the order sent (as RunComfy's CLI collects
    /// them: strings that start with `http://` or `https://`, at any depth).
    pub fn other_urls(&self) -> Vec<OtherUrl> {
        let mut found = Vec::new();
        for (key, value) in &self.other {
            walk(value, 0, &mut |url| {
                found.push(OtherUrl {
                    key: key.clone(),
                    url: url.to_owned(),
                })
            });
            if found.len() >= MAX_OTHER_URLS {
                found.truncate(MAX_OTHER_URLS);
                break;
            }
        }
        found
    }
}

fn walk(value: &Value, depth: usize, found: &mut impl FnMut(&str)) {
    if depth > MAX_OTHER_DEPTH {
        return;
    }
    match value {
        Value::String(s) => {
            let head = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            if head.starts_with("http://") || head.starts_with("https://") {
                found(s);
            }
        }
        Value::Array(items) => items
            .iter()
            .take(MAX_OTHER_URLS)
            .for_each(|v| walk(v, depth + 1, found)),
        Value::Object(map) => map
            .values()
            .take(MAX_OTHER_URLS)
            .for_each(|v| walk(v, depth + 1, found)),
        _ => {}
    }
}

fn merge(many: &[String], one: Option<&String>) -> Vec<String> {
    let mut urls: Vec<String> = many.to_vec();
    if let Some(one) = one {
        if !urls.contains(one) {
            urls.push(one.clone());
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runcomfy::wire::ResultResponse;
    use serde_json::json;

    #[test]
    fn output_reads_images_then_image_and_ignores_extras() {
        let r: ResultResponse = serde_json::from_value(json!({
            "request_id": "r", "status": "succeeded",
            "output": {"images": ["a", "b"], "image": "c", "seed": 42, "videos": null}
        }))
        .unwrap();
        assert_eq!(r.cost, None);
        let out = r.output.unwrap();
        assert_eq!(out.image_urls(), ["a", "b", "c"]);
        assert!(out.video_urls().is_empty());
        assert!(out.audio_urls().is_empty());
    }

    /// Issue 40 finding 9: URLs under keys other than image(s)/video(s)/audio(s) are kept.
    #[test]
    fn urls_under_other_keys_are_collected_as_runcomfys_cli_does() {
        let out: Output = serde_json::from_value(json!({
            "images": ["https://h/a.png"],
            "mesh": "https://h/m.glb",
            "result": {"files": [{"url": "https://h/r.webp"}, {"note": "not a url"}], "seed": 7},
            "caption": "a cat",
            "preview": "http://h/p.png"
        }))
        .unwrap();
        assert_eq!(out.image_urls(), ["https://h/a.png"]);
        let other: Vec<(String, String)> = out.other_urls().into_iter().map(|o| (o.key, o.url)).collect();
        let want = [
            ("mesh", "https://h/m.glb"),
            ("preview", "http://h/p.png"),
            ("result", "https://h/r.webp"),
        ];
        let mut got = other.clone();
        got.sort();
        assert_eq!(
            got,
            want.map(|(k, u)| (k.to_owned(), u.to_owned())),
            "every http(s) URL, none of the other strings"
        );
    }

    #[test]
    fn output_reads_video_and_audio_leniently() {
        let out: Output = serde_json::from_value(json!({
            "video": "v.mp4", "audio": "a.wav", "audios": ["b.mp3", 7, "a.wav"]
        }))
        .unwrap();
        assert_eq!(out.video_urls(), ["v.mp4"]);
        assert_eq!(out.audio_urls(), ["b.mp3", "a.wav"]);
        assert!(out.image_urls().is_empty());
    }
}
