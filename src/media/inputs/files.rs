//! Local files as reference images: read only inside the allowed directories, within the cap.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use super::{
    allowed,
    png::{as_png, sniff, ENCODES, PNG_MIME},
    too_large, InputKind, InputOptions, InputRecord, Resolved,
};

/// The copy saved on this machine of an earlier job's image, for a job RunComfy no longer has:
/// read from the output directory (this server's own, so no `--input-dir` is needed), within
/// the cap, sent like a file.
pub async fn saved_copy(options: &InputOptions, path: PathBuf, given: &str) -> Result<Resolved, String> {
    let (max_bytes, given) = (options.max_bytes, given.trim().to_owned());
    let _slot = ENCODES.acquire().await;
    tokio::task::spawn_blocking(move || {
        let shown_path = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("the saved copy {shown_path} cannot be read: {e}"))?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(&shown_path, bytes.len() as u64, max_bytes));
        }
        let format =
            sniff(&bytes).ok_or_else(|| format!("the saved copy {shown_path} is not a PNG, JPEG or WebP image"))?;
        let png = as_png(&bytes, format).map_err(|e| format!("the saved copy {shown_path} cannot be used: {e}"))?;
        Ok(Resolved {
            wire: png.data_uri(),
            record: InputRecord {
                kind: InputKind::Job,
                given,
                url: None,
                path: Some(shown_path),
                bytes: Some(png.bytes.len() as u64),
                mime_type: Some(PNG_MIME.to_owned()),
                sent_as: png.sent_as(),
            },
        })
    })
    .await
    .map_err(|e| format!("reading the saved copy failed: {e}"))?
}

/// A local file, if it is inside an allowed directory, within the cap and an image, as a
/// `data:` URI. Runs the file system calls off the async runtime.
pub async fn file(options: &InputOptions, path: PathBuf, given: &str) -> Result<Resolved, String> {
    let (options, given) = (options.clone(), given.trim().to_owned());
    let _slot = ENCODES.acquire().await;
    tokio::task::spawn_blocking(move || read_file(&options, &path, given))
        .await
        .map_err(|e| format!("reading the file failed: {e}"))?
}

fn read_file(options: &InputOptions, path: &Path, given: String) -> Result<Resolved, String> {
    let shown_path = path.display();
    if options.dirs.is_empty() {
        return Err(format!(
            "{shown_path} is a local file, and this server reads none: start it with --input-dir DIR (or RUNCOMFY_INPUT_DIRS) to allow a directory, or give an https:// URL instead"
        ));
    }
    let allows = |p: &Path| options.dirs.iter().any(|dir| p.starts_with(dir));
    // Said the same whether or not the file exists: the answer tells nothing about a place the
    // server may not read.
    let outside = |p: &Path, link: Option<&Path>| {
        let parent = p.parent().unwrap_or(p).display();
        let what = match link {
            Some(real) => format!("{shown_path} is a link to {}, which is", real.display()),
            None => format!("{shown_path} is"),
        };
        format!(
            "{what} outside the directories this server may read ({}). Move the file into one of them, or restart the server with --input-dir {parent} to allow its directory",
            allowed(options)
        )
    };
    let lexical = lexically_normal(path);
    // Resolved first (symlinks followed), so that a link inside an allowed directory that
    // points outside it is refused like the path it points to.
    let real = match dunce::canonicalize(path) {
        Ok(real) => real,
        Err(_) if !allows(&lexical) => return Err(outside(&lexical, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(format!("there is no file at {shown_path}")),
        Err(e) => return Err(format!("{shown_path} cannot be read: {e}")),
    };
    if !allows(&real) {
        // A link (or a directory on the way) that leads out: say where, so that the person
        // sees why a file in an allowed directory is refused.
        let link = (real != lexical).then_some(real.as_path());
        return Err(outside(&real, link));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{shown_path} cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown_path} is not a file"));
    }
    if meta.len() > options.max_bytes {
        return Err(too_large(&shown_path.to_string(), meta.len(), options.max_bytes));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(&real)
        .and_then(|f| f.take(options.max_bytes + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{shown_path} cannot be read: {e}"))?;
    if bytes.len() as u64 > options.max_bytes {
        return Err(too_large(
            &shown_path.to_string(),
            bytes.len() as u64,
            options.max_bytes,
        ));
    }
    let format = sniff(&bytes)
        .ok_or_else(|| format!("{shown_path} is not a PNG, JPEG or WebP image (judged by its first bytes)"))?;
    let png = as_png(&bytes, format).map_err(|e| format!("{shown_path} cannot be used: {e}"))?;
    Ok(Resolved {
        wire: png.data_uri(),
        record: InputRecord {
            kind: InputKind::File,
            given,
            url: None,
            path: Some(real.display().to_string()),
            bytes: Some(png.bytes.len() as u64),
            mime_type: Some(PNG_MIME.to_owned()),
            sent_as: png.sent_as(),
        },
    })
}

/// `path` with `.` and `..` folded away, without asking the file system (which would say
/// whether something exists there).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::inputs::tests::{options, png_1x1};

    #[test]
    fn files_are_read_only_inside_allowed_directories() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let image = allowed.path().join("a.png");
        std::fs::write(&image, png_1x1()).unwrap();
        std::fs::write(outside.path().join("b.png"), png_1x1()).unwrap();
        std::fs::write(allowed.path().join("notes.txt"), b"hello, not an image").unwrap();
        std::fs::write(allowed.path().join("big.png"), vec![0u8; 2048]).unwrap();
        let opts = options(&[allowed.path()]);

        let ok = read_file(&opts, &image, "given".into()).unwrap();
        assert!(ok.wire.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", ok.wire);
        assert_eq!(ok.record.kind, InputKind::File);
        assert_eq!(ok.record.bytes, Some(png_1x1().len() as u64));
        assert_eq!(ok.record.mime_type.as_deref(), Some("image/png"));

        let refused = read_file(&opts, &outside.path().join("b.png"), "x".into()).unwrap_err();
        assert!(
            refused.contains("outside") && refused.contains("--input-dir"),
            "{refused}"
        );
        let missing = read_file(&opts, &allowed.path().join("nope.png"), "x".into()).unwrap_err();
        assert!(missing.contains("no file"), "{missing}");
        let text = read_file(&opts, &allowed.path().join("notes.txt"), "x".into()).unwrap_err();
        assert!(text.contains("not a PNG, JPEG or WebP"), "{text}");
        let big = read_file(&opts, &allowed.path().join("big.png"), "x".into()).unwrap_err();
        assert!(big.contains("--input-max-mb"), "{big}");
        let dir = read_file(&opts, allowed.path(), "x".into()).unwrap_err();
        assert!(dir.contains("not a file"), "{dir}");
        let none = read_file(&InputOptions::default(), &image, "x".into()).unwrap_err();
        assert!(none.contains("--input-dir"), "{none}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_an_allowed_directory_is_refused() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), png_1x1()).unwrap();
        let link = allowed.path().join("link.png");
        std::os::unix::fs::symlink(outside.path().join("secret.png"), &link).unwrap();
        let refused = read_file(&options(&[allowed.path()]), &link, "x".into()).unwrap_err();
        assert!(refused.contains("outside"), "{refused}");
        // It says where the link leads: the file in the allowed directory is only a link.
        let real = dunce::canonicalize(outside.path().join("secret.png")).unwrap();
        assert!(
            refused.contains(&format!("is a link to {}", real.display())),
            "{refused}"
        );
    }

    /// Outside the allowed directories, a missing file gets the same answer as one that exists:
    /// nothing is learnt about a place the server may not read.
    #[test]
    fn outside_the_allowed_directories_a_missing_file_is_answered_like_an_existing_one() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let outside_dir = dunce::canonicalize(outside.path()).unwrap();
        std::fs::write(outside_dir.join("there.png"), png_1x1()).unwrap();
        let opts = options(&[allowed.path()]);
        let there = read_file(&opts, &outside_dir.join("there.png"), "x".into()).unwrap_err();
        let missing = read_file(&opts, &outside_dir.join("missing.png"), "x".into()).unwrap_err();
        assert_eq!(
            there.replace("there.png", "F"),
            missing.replace("missing.png", "F"),
            "{there} / {missing}"
        );
        assert!(!missing.contains("no file"), "{missing}");
        // Walking out with `..` is judged by where it leads, the same way.
        let climbed = allowed.path().join("..").join("nowhere.png");
        let refused = read_file(&opts, &climbed, "x".into()).unwrap_err();
        assert!(refused.contains("outside"), "{refused}");
    }
}
