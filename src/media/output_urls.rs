//! A result's output URLs sorted by kind: the image, video and audio keys RunComfy documents,
//! and any other http(s) URL a model returned under a key of its own, sorted by the key's name
//! or the URL's extension.

use super::OutputKind;

/// A result's output URLs by kind, each in RunComfy's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputUrls {
    pub images: Vec<String>,
    pub videos: Vec<String>,
    pub audios: Vec<String>,
    /// URLs under other keys whose kind neither their key nor their extension tells.
    pub files: Vec<String>,
}

impl OutputUrls {
    /// Every URL of `output`: its image(s), video(s) and audio(s) keys, then every http(s) URL
    /// under any other key (as RunComfy's CLI collects them), sorted into a kind by the key's
    /// name or the URL's extension, else listed as a file.
    pub fn of(output: &crate::runcomfy::Output) -> Self {
        let mut urls = Self {
            images: output.image_urls(),
            videos: output.video_urls(),
            audios: output.audio_urls(),
            files: Vec::new(),
        };
        for other in output.other_urls() {
            if urls.contains(&other.url) {
                continue;
            }
            match kind_of(&other.key, &other.url) {
                OutputKind::Image => urls.images.push(other.url),
                OutputKind::Video => urls.videos.push(other.url),
                OutputKind::Audio => urls.audios.push(other.url),
                OutputKind::File => urls.files.push(other.url),
            }
        }
        urls
    }

    fn contains(&self, url: &String) -> bool {
        [&self.images, &self.videos, &self.audios, &self.files]
            .iter()
            .any(|list| list.contains(url))
    }

    pub fn len(&self) -> usize {
        self.images.len() + self.videos.len() + self.audios.len() + self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The kind of a URL found under an unexpected key of `output`: the key's name says it
/// (`image_url`, `video_result`), else the URL's extension, else it is a file.
fn kind_of(key: &str, url: &str) -> OutputKind {
    let key = key.to_ascii_lowercase();
    if key.contains("image") || key.contains("img") || key.contains("photo") {
        return OutputKind::Image;
    }
    if key.contains("video") {
        return OutputKind::Video;
    }
    if key.contains("audio") || key.contains("sound") || key.contains("music") || key.contains("speech") {
        return OutputKind::Audio;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path
        .rsplit_once('.')
        .filter(|(_, ext)| !ext.contains('/'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" | "jpg" | "jpeg" | "webp" | "gif" => OutputKind::Image,
        "mp4" | "webm" | "mov" | "mkv" | "m4v" => OutputKind::Video,
        "wav" | "mp3" | "ogg" | "flac" | "m4a" | "aac" | "opus" => OutputKind::Audio,
        _ => OutputKind::File,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_url_under_another_key_is_sorted_by_the_key_then_the_extension() {
        for (key, url, kind) in [
            ("image_url", "https://x/a", OutputKind::Image),
            ("Video_Result", "https://x/a.png", OutputKind::Video),
            ("speech", "https://x/a", OutputKind::Audio),
            ("result", "https://x/a.JPG?sig=1", OutputKind::Image),
            ("result", "https://x/a.webm#t", OutputKind::Video),
            ("result", "https://x/a.flac", OutputKind::Audio),
            ("result", "https://x.example/dir.mp4/model", OutputKind::File),
            ("result", "https://x/model.glb", OutputKind::File),
        ] {
            assert_eq!(kind_of(key, url), kind, "{key} {url}");
        }
    }

    #[test]
    fn every_url_of_an_output_is_listed_once_under_its_kind() {
        let output: crate::runcomfy::Output = serde_json::from_value(json!({
            "images": ["https://x/1.png"],
            "video": "https://x/v.mp4",
            "mesh": {"file": "https://x/m.glb", "preview": "https://x/p.webp"},
            "again": "https://x/1.png",
        }))
        .unwrap();
        let urls = OutputUrls::of(&output);
        assert_eq!(
            urls,
            OutputUrls {
                images: vec!["https://x/1.png".into(), "https://x/p.webp".into()],
                videos: vec!["https://x/v.mp4".into()],
                audios: vec![],
                files: vec!["https://x/m.glb".into()],
            }
        );
        assert_eq!(urls.len(), 4);
        assert!(!urls.is_empty() && OutputUrls::default().is_empty());
    }
}
