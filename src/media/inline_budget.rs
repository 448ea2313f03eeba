//! One result's inline bytes, shared by its images in order: full-size copies within
//! `--full-inline-max-kb`, previews within [`PREVIEW_BUDGET_IN_PREVIEWS`] previews' worth. What
//! did not fit, and every other bound applied to the result, becomes a [`MediaNote`].

use super::{
    fetch::{numbered, Request},
    preview::Preview,
    Collected, InlineForm, InlineImage, InlineReport, Listing, MediaNote, MediaOptions, OutputKind, OutputReport,
};

/// Previews per result, in bytes, are capped at this many previews' worth, so a large image set
/// cannot push a result past what the per-preview cap was chosen for.
const PREVIEW_BUDGET_IN_PREVIEWS: usize = 4;

/// What was made from one downloaded image for the inline part of the result.
pub(super) struct Made {
    pub(super) preview: Option<Preview>,
    /// The whole file, when full size was asked for and it is under the cap on its own.
    pub(super) full: Option<Vec<u8>>,
}

/// One job's processed outputs: its images (with what was made of each), its videos and audio files.
pub(super) type Done = (Vec<(OutputReport, Option<Made>)>, Vec<OutputReport>);

/// The inline bytes a result may still carry.
pub(super) struct Budget {
    full: usize,
    preview: usize,
}

impl Budget {
    /// The budget of a result whose calls asked for full size (`full_size`) or not.
    pub(super) fn new(options: &MediaOptions, full_size: bool) -> Self {
        Self {
            // `--no-preview` means no inline images at all, full-size ones included.
            full: if full_size && options.previews {
                options.full_inline_max_bytes
            } else {
                0
            },
            preview: options.preview_max_bytes * PREVIEW_BUDGET_IN_PREVIEWS,
        }
    }

    /// One job's images, inline as far as the budget goes; what did not fit is said in a note.
    /// `done` holds the processed images, the first of `listed`.
    pub(super) fn apply(
        &mut self,
        options: &MediaOptions,
        request: Request<'_>,
        listed: Listing<'_>,
        (done, files): Done,
    ) -> Collected {
        let processed = done.len();
        let files_processed = files.len();
        let mut collected = Collected {
            unlisted: listed.unlisted,
            ..Collected::default()
        };
        if request.full_size && !options.previews {
            collected.notes.push(MediaNote::InlineImagesOff);
        }
        let mut over_full_budget = 0;
        let mut over_preview_budget = 0;
        for (mut report, made) in done {
            let Some(made) = made else {
                collected.outputs.push(report);
                continue;
            };
            let (width, height) = (report.width.unwrap_or(0), report.height.unwrap_or(0));
            let full = made.full.filter(|bytes| bytes.len() <= self.full);
            if request.full_size && options.previews && full.is_none() {
                over_full_budget += 1;
            }
            let inline = match (full, made.preview) {
                (Some(bytes), _) => {
                    self.full -= bytes.len();
                    Some((
                        InlineForm::FullSize,
                        width,
                        height,
                        report.mime_type.clone().unwrap_or_default(),
                        bytes,
                    ))
                }
                (None, Some(p)) if p.jpeg.len() <= self.preview => {
                    self.preview -= p.jpeg.len();
                    Some((
                        InlineForm::Preview,
                        p.width,
                        p.height,
                        Preview::MIME_TYPE.to_owned(),
                        p.jpeg,
                    ))
                }
                (None, Some(_)) => {
                    over_preview_budget += 1;
                    None
                }
                (None, None) => None,
            };
            if let Some((form, width, height, mime_type, data)) = inline {
                report.inline = Some(InlineReport {
                    form,
                    width,
                    height,
                    bytes: data.len(),
                    mime_type: mime_type.clone(),
                });
                collected.inline.push(InlineImage {
                    index: report.index,
                    mime_type,
                    data,
                });
            }
            collected.outputs.push(report);
        }
        collected.outputs.extend(
            listed.images[processed..]
                .iter()
                .enumerate()
                .map(|(i, url)| OutputReport::new(OutputKind::Image, processed + i + 1, url)),
        );
        let mut files = files.into_iter().peekable();
        for (kind, index, url) in
            numbered(OutputKind::Video, listed.videos).chain(numbered(OutputKind::Audio, listed.audios))
        {
            let report = files
                .next_if(|r| r.kind == kind && r.index == index)
                .unwrap_or_else(|| OutputReport::new(kind, index, url));
            collected.outputs.push(report);
        }
        // Other files are listed by URL only: there is no telling what they are.
        collected.outputs.extend(
            numbered(OutputKind::File, listed.files).map(|(kind, index, url)| OutputReport::new(kind, index, url)),
        );
        let files_listed = listed.videos.len() + listed.audios.len();
        if options.output_dir.is_some() && files_listed > files_processed {
            collected.notes.push(MediaNote::FilesNotSaved {
                count: files_listed - files_processed,
            });
        }

        let fetches = options.previews || options.output_dir.is_some();
        if fetches && request.urls.images.len() > processed {
            collected.notes.push(MediaNote::ImagesNotFetched {
                fetched: processed,
                previewed: options.previews,
                saved: options.output_dir.is_some(),
            });
        }
        if listed.unlisted > 0 {
            collected.notes.push(MediaNote::OutputsUnlisted {
                total: request.urls.len(),
                unlisted: listed.unlisted,
            });
        }

        if over_full_budget > 0 {
            collected.notes.push(MediaNote::PreviewsInsteadOfFullSize {
                count: over_full_budget,
                cap_bytes: options.full_inline_max_bytes,
            });
        }
        if over_preview_budget > 0 {
            collected.notes.push(MediaNote::PreviewsLeftOut {
                count: over_preview_budget,
            });
        }
        collected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{listing, OutputUrls};

    fn image(index: usize, bytes: usize, preview: usize) -> (OutputReport, Option<Made>) {
        let report = OutputReport {
            mime_type: Some("image/png".into()),
            width: Some(8),
            height: Some(4),
            ..OutputReport::new(OutputKind::Image, index, &format!("https://x/{index}.png"))
        };
        let made = Made {
            preview: Some(Preview {
                jpeg: vec![0; preview],
                width: 2,
                height: 1,
            }),
            full: Some(vec![1; bytes]),
        };
        (report, Some(made))
    }

    fn urls(images: usize) -> OutputUrls {
        OutputUrls {
            images: (1..=images).map(|i| format!("https://x/{i}.png")).collect(),
            ..OutputUrls::default()
        }
    }

    #[test]
    fn full_size_copies_fit_the_budget_in_order_and_the_rest_come_as_previews() {
        let options = MediaOptions {
            full_inline_max_bytes: 250,
            ..MediaOptions::default()
        };
        let urls = urls(3);
        let request = Request {
            name_stem: "j",
            urls: &urls,
            full_size: true,
        };
        let done = vec![image(1, 100, 10), image(2, 100, 10), image(3, 100, 10)];
        let mut budget = Budget::new(&options, true);
        let collected = budget.apply(&options, request, listing(&urls), (done, vec![]));
        let forms: Vec<InlineForm> = collected
            .outputs
            .iter()
            .map(|o| o.inline.as_ref().unwrap().form)
            .collect();
        assert_eq!(forms, [InlineForm::FullSize, InlineForm::FullSize, InlineForm::Preview]);
        assert_eq!(collected.inline[2].mime_type, Preview::MIME_TYPE);
        assert_eq!(
            collected.notes,
            [MediaNote::PreviewsInsteadOfFullSize {
                count: 1,
                cap_bytes: 250
            }]
        );
    }

    #[test]
    fn previews_past_the_budget_are_left_out_and_unfetched_images_are_listed() {
        let options = MediaOptions {
            preview_max_bytes: 10,
            ..MediaOptions::default()
        };
        let urls = urls(7);
        let request = Request {
            name_stem: "j",
            urls: &urls,
            full_size: false,
        };
        // Four previews' worth of budget: the fifth image has none inline.
        let done = (1..=5).map(|i| image(i, 1, 10)).collect();
        let collected = Budget::new(&options, false).apply(&options, request, listing(&urls), (done, vec![]));
        assert_eq!(collected.inline.len(), 4);
        assert_eq!(collected.outputs.len(), 7, "the two not fetched are listed by URL");
        assert_eq!(collected.outputs[6].url, "https://x/7.png");
        assert_eq!(
            collected.notes,
            [
                MediaNote::ImagesNotFetched {
                    fetched: 5,
                    previewed: true,
                    saved: false
                },
                MediaNote::PreviewsLeftOut { count: 1 }
            ]
        );
    }

    #[test]
    fn full_size_on_a_server_without_inline_images_is_said_and_nothing_is_inline() {
        let options = MediaOptions {
            previews: false,
            ..MediaOptions::default()
        };
        let urls = urls(1);
        let request = Request {
            name_stem: "j",
            urls: &urls,
            full_size: true,
        };
        let done = vec![(OutputReport::new(OutputKind::Image, 1, "https://x/1.png"), None)];
        let collected = Budget::new(&options, true).apply(&options, request, listing(&urls), (done, vec![]));
        assert!(collected.inline.is_empty());
        assert_eq!(collected.notes, [MediaNote::InlineImagesOff]);
    }
}
