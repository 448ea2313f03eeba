//! What happened to a result's outputs as a whole, said as data: which bound was applied, what
//! was left out and why. Media decides what happened; `mcp/` says it to the model in words
//! (`mcp::media_notes`), so the wording lives with the other texts the model reads.

/// One result-wide remark on what the outputs became (per-output problems are in
/// [`super::OutputReport::problem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaNote {
    /// Full size was asked for, but this server puts no images inline (`--no-preview`).
    InlineImagesOff,
    /// Videos or audio files listed but not saved: the result's [`super::MAX_PROCESSED`] were
    /// used up.
    FilesNotSaved { count: usize },
    /// Only the first `fetched` images were downloaded (and previewed and/or saved, as the
    /// server does); the others are listed by URL.
    ImagesNotFetched {
        fetched: usize,
        previewed: bool,
        saved: bool,
    },
    /// RunComfy listed `total` outputs, `unlisted` of which are past the listing bound.
    OutputsUnlisted { total: usize, unlisted: usize },
    /// Images asked for at full size that came as previews: the result's full-size budget of
    /// `cap_bytes` was used up.
    PreviewsInsteadOfFullSize { count: usize, cap_bytes: usize },
    /// Images with no inline preview: the result's preview budget was used up.
    PreviewsLeftOut { count: usize },
}
