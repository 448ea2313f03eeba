//! `data:image/…;base64,` URIs as reference images: checked, size-capped, re-encoded.

use base64::Engine as _;
use image::ImageFormat;

use super::{
    png::{as_png, png_of, sniff, ENCODES, PNG_MIME},
    shown, too_large, InputKind, InputOptions, InputRecord, Resolved,
};

/// A `data:image/…;base64,` URI as the PNG an upload keeps (what [`data_uri`] would send), with
/// its width and height.
pub async fn upload_png(options: &InputOptions, uri: &str) -> Result<(Vec<u8>, u32, u32), String> {
    let (bytes, format) = data_uri_bytes(options, uri)?;
    png_of(bytes, format).await
}

/// A `data:image/…;base64,` URI: decodable, an image, within the cap; sent re-encoded as a PNG
/// within RunComfy's per-input limits. The re-encoding runs off the async runtime.
pub async fn data_uri(options: &InputOptions, uri: &str) -> Result<Resolved, String> {
    let (bytes, format) = data_uri_bytes(options, uri)?;
    let _slot = ENCODES.acquire().await;
    let png = tokio::task::spawn_blocking(move || as_png(&bytes, format))
        .await
        .map_err(|e| format!("re-encoding the image failed: {e}"))?
        .map_err(|e| format!("{} cannot be used: {e}", shown(uri)))?;
    Ok(Resolved {
        wire: png.data_uri(),
        record: InputRecord {
            kind: InputKind::DataUri,
            given: format!(
                "(a data URI: {}, {} bytes; not kept)",
                format.to_mime_type(),
                png.original_bytes
            ),
            url: None,
            path: None,
            bytes: Some(png.bytes.len() as u64),
            mime_type: Some(PNG_MIME.to_owned()),
            sent_as: png.sent_as(),
        },
    })
}

/// The image bytes of a data URI, and their sniffed format.
fn data_uri_bytes(options: &InputOptions, uri: &str) -> Result<(Vec<u8>, ImageFormat), String> {
    let shown_uri = shown(uri);
    let rest = uri.trim().get(5..).unwrap_or_default(); // after `data:`
    let (header, payload) = rest
        .split_once(',')
        .ok_or_else(|| format!("{shown_uri} is not a data URI (no comma before the data)"))?;
    let mut parts = header.split(';');
    let declared = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !declared.starts_with("image/") {
        return Err(format!(
            "{shown_uri} declares type {declared:?}; a reference image must be data:image/png, image/jpeg or image/webp"
        ));
    }
    if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(format!(
            "{shown_uri} is not base64-encoded; use data:image/png;base64,…"
        ));
    }
    let payload: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Refused before decoding, so that a huge URI costs no second copy.
    let estimated = payload.len() as u64 / 4 * 3;
    if estimated > options.max_bytes + 3 {
        return Err(too_large("the data URI", estimated, options.max_bytes));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine
        .decode(payload.as_bytes())
        .map_err(|e| format!("{shown_uri} does not decode as base64 ({e})"))?;
    if bytes.len() as u64 > options.max_bytes {
        return Err(too_large("the data URI", bytes.len() as u64, options.max_bytes));
    }
    let format = sniff(&bytes).ok_or_else(|| format!("{shown_uri} does not hold a PNG, JPEG or WebP image"))?;
    Ok((bytes, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::inputs::tests::{options, png_1x1};

    #[tokio::test]
    async fn data_uris_are_checked_and_relabelled_by_their_bytes() {
        let engine = base64::engine::general_purpose::STANDARD;
        let payload = engine.encode(png_1x1());
        let opts = options(&[]);
        let ok = data_uri(&opts, &format!("data:image/jpeg;base64,{payload}"))
            .await
            .unwrap();
        assert_eq!(ok.wire, format!("data:image/png;base64,{payload}"));
        assert!(!ok.record.given.contains(&payload), "the bytes are not kept");
        for (bad, says) in [
            ("data:text/plain;base64,aGVsbG8=", "declares type"),
            ("data:image/png,rawbytes", "not base64"),
            ("data:image/png;base64,@@@", "does not decode"),
            ("data:image/png;base64,aGVsbG8gd29ybGQ=", "does not hold"),
            ("data:image/png;base64", "no comma"),
        ] {
            let err = data_uri(&opts, bad).await.unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let big = format!("data:image/png;base64,{}", engine.encode(vec![0u8; 4096]));
        assert!(data_uri(&opts, &big).await.unwrap_err().contains("--input-max-mb"));
    }
}
