//! What an entry of `images` names, judged by its text alone.

use std::path::PathBuf;

use super::shown;
use crate::media::save::expand_home;
use crate::runcomfy::RequestId;

/// What an entry names, as far as its text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `https://` URL, exactly as given.
    Url(String),
    /// An earlier job's `index`-th image (from 1).
    Job { id: RequestId, index: usize },
    /// A local file, by absolute path (`~` expanded); not yet checked.
    File(PathBuf),
    /// A `data:` URI, exactly as given.
    DataUri(String),
    /// An upload's id (of `upload:<id>`).
    Upload(String),
    /// A file the host handed over (ChatGPT's file parameters).
    HostFile(crate::media::host_files::HostFile),
}

impl Source {
    /// Reads an entry. `Err` says what is wrong with it and what to give instead.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        // First: its string form holds a URL, which is not the entry's own.
        if let Some(file) = crate::media::host_files::parse(entry) {
            return file.map(Self::HostFile);
        }
        let lower = entry.get(..8).unwrap_or(entry).to_ascii_lowercase();
        if lower.starts_with("data:") {
            return Ok(Self::DataUri(entry.to_owned()));
        }
        if lower.starts_with("https://") {
            let url = reqwest::Url::parse(entry).map_err(|e| format!("{} is not a valid URL ({e})", shown(entry)))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("{} has no host", shown(entry)));
            }
            return Ok(Self::Url(entry.to_owned()));
        }
        if lower.starts_with("http://") {
            return Err(format!(
                "{} is a plain http:// URL; RunComfy fetches reference images only over public https://. Give an https:// URL, or for an image this server made, its request_id or request_id#n",
                shown(entry)
            ));
        }
        if let Some((scheme, _)) = entry.split_once("://") {
            return Err(format!(
                "{} is a {scheme}:// URL; only public https:// URLs can be passed to RunComfy",
                shown(entry)
            ));
        }
        if let Some(upload) = crate::media::uploads::reference(entry) {
            return upload.map(Self::Upload);
        }
        if let Some(job) = job_reference(entry) {
            return job;
        }
        let path = expand_home(entry);
        if path.is_absolute() {
            return Ok(Self::File(path));
        }
        if looks_like_a_path(entry) {
            return Err(format!(
                "{} is a relative path; give the file's absolute path (the server does not know your working directory)",
                shown(entry)
            ));
        }
        Err(format!(
            "{} is not an image reference: give a request_id or request_id#n of an earlier job, an https:// URL, an absolute file path, or a data:image/...;base64, URI",
            shown(entry)
        ))
    }
}

/// Whether an entry that is no URL, data URI or job reference is shaped like a file path
/// (absolute or relative).
pub fn looks_like_a_path(entry: &str) -> bool {
    let entry = entry.trim();
    !entry.contains("://")
        && !entry.to_ascii_lowercase().starts_with("data:")
        && job_reference(entry).is_none()
        && (expand_home(entry).is_absolute() || entry.contains(['/', '\\', '.']))
}

/// `<request_id>` or `<request_id>#<n>`; `None` when the entry is not shaped like one.
fn job_reference(entry: &str) -> Option<Result<Source, String>> {
    let (id, index) = match entry.split_once('#') {
        Some((id, n)) => (id, Some(n)),
        None => (entry, None),
    };
    let id = RequestId::parse(id).ok()?;
    let index = match index {
        None => 1,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Some(Err(format!(
                    "{} names output {n:?} of job {id}; outputs are numbered from 1 ({id}#1 is the first image)",
                    shown(entry)
                )))
            }
        },
    };
    Some(Ok(Source::Job { id, index }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_told_apart_by_their_text() {
        assert_eq!(
            Source::parse(" https://images.invalid/a.png?x=1 ").unwrap(),
            Source::Url("https://images.invalid/a.png?x=1".into())
        );
        let job = |id: &str, index| Source::Job {
            id: RequestId::parse(id).unwrap(),
            index,
        };
        assert_eq!(Source::parse("abc-123").unwrap(), job("abc-123", 1));
        assert_eq!(Source::parse("abc-123#3").unwrap(), job("abc-123", 3));
        assert!(Source::parse("abc#0").unwrap_err().contains("numbered from 1"));
        assert!(Source::parse("abc#x").is_err());
        assert_eq!(Source::parse("/tmp/a.png").unwrap(), Source::File("/tmp/a.png".into()));
        assert!(matches!(
            Source::parse("data:image/png;base64,AAAA").unwrap(),
            Source::DataUri(_)
        ));
        let http = Source::parse("http://example.com/a.png").unwrap_err();
        assert!(http.contains("https://") && http.contains("request_id#n"), "{http}");
        assert!(Source::parse("ftp://x/y").unwrap_err().contains("ftp://"));
        assert!(Source::parse("photo.png").unwrap_err().contains("absolute path"));
        assert!(Source::parse("./photo").unwrap_err().contains("absolute path"));
        assert!(Source::parse("what is this?")
            .unwrap_err()
            .contains("not an image reference"));
    }
}
