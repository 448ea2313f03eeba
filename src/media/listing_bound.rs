//! The bound on what one answer lists: however many outputs the upstream names, at most
//! [`MAX_LISTED`] of them, within [`MAX_LISTED_URL_BYTES`] of URLs, are listed; the rest are
//! counted. Applied in one place ([`listing`], or a [`ListingRoom`] shared by the results of one
//! answer), by the media collection, the tools' answers and the journal alike.

use super::OutputUrls;

/// Outputs of one result listed at all (URL, link, entry in `outputs`); the rest are counted.
pub const MAX_LISTED: usize = 64;
/// The listed outputs' URLs together stay within this many bytes (each URL appears a few times
/// in an answer): 64 ordinary URLs fit, and a few kilobyte-long signed ones.
pub const MAX_LISTED_URL_BYTES: usize = 16 * 1024;

/// The outputs of a result that are listed: the first images, then the first videos, then the
/// first audio files, at most [`MAX_LISTED`] of them and [`MAX_LISTED_URL_BYTES`] of URLs;
/// `unlisted` counts the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub images: &'a [String],
    pub videos: &'a [String],
    pub audios: &'a [String],
    pub files: &'a [String],
    pub unlisted: usize,
}

/// The one place the listing bound is applied: by [`super::collect`], the tools' answers and the journal.
pub fn listing(urls: &OutputUrls) -> Listing<'_> {
    ListingRoom::new().listing(urls)
}

/// What is left of one answer's listing bound, for an answer that lists several results
/// (`list_jobs`): each takes its share in turn, and once it is used up the rest are counted.
#[derive(Debug, Clone)]
pub struct ListingRoom {
    entries: usize,
    bytes: usize,
}

impl Default for ListingRoom {
    fn default() -> Self {
        Self::new()
    }
}

impl ListingRoom {
    pub fn new() -> Self {
        Self {
            entries: MAX_LISTED,
            bytes: MAX_LISTED_URL_BYTES,
        }
    }

    /// One job's room in an answer for `jobs` jobs (a batch): its own [`MAX_LISTED`] entries,
    /// and its share of the URL bytes, so that the batch's answer is no larger than one job's
    /// of long URLs.
    pub fn share_of(jobs: usize) -> Self {
        Self {
            entries: MAX_LISTED,
            bytes: MAX_LISTED_URL_BYTES / jobs.max(1),
        }
    }

    /// The longest prefix of `items` that fits, taken out of the room.
    pub fn take<'a>(&mut self, items: &'a [String]) -> &'a [String] {
        let mut n = 0;
        for item in items {
            if self.entries == 0 || item.len() > self.bytes {
                // Nothing after an item that did not fit is listed, so a list is always a prefix.
                self.entries = 0;
                break;
            }
            self.entries -= 1;
            self.bytes -= item.len();
            n += 1;
        }
        &items[..n]
    }

    /// A result's images, then its videos, its audio files and its other files (as in
    /// `outputs`), out of the room.
    pub fn listing<'a>(&mut self, urls: &'a OutputUrls) -> Listing<'a> {
        let images = self.take(&urls.images);
        let videos = self.take(&urls.videos);
        let audios = self.take(&urls.audios);
        let files = self.take(&urls.files);
        Listing {
            unlisted: urls.len() - images.len() - videos.len() - audios.len() - files.len(),
            images,
            videos,
            audios,
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:0>len$}")).collect()
    }

    fn of(images: &[String], videos: &[String], audios: &[String]) -> OutputUrls {
        OutputUrls {
            images: images.to_vec(),
            videos: videos.to_vec(),
            audios: audios.to_vec(),
            files: Vec::new(),
        }
    }

    #[test]
    fn listing_is_a_prefix_within_the_count_and_the_bytes() {
        let few = urls(4, 100);
        let video = urls(1, 100);
        let audio = urls(2, 50);
        let all = of(&few, &video, &audio);
        assert_eq!(
            listing(&all),
            Listing {
                images: &few[..],
                videos: &video[..],
                audios: &audio[..],
                files: &[],
                unlisted: 0
            }
        );

        let many = of(&urls(20_000, 80), &video, &audio);
        let listed = listing(&many);
        assert_eq!(listed.images.len(), MAX_LISTED);
        assert!(listed.videos.is_empty(), "videos come after every image");
        assert!(listed.audios.is_empty(), "audio comes after every video");
        assert_eq!(listed.unlisted, 20_000 - MAX_LISTED + 3);

        // Long URLs: the byte budget ends the list first; one longer than it is never listed.
        let long = of(&urls(10, 4000), &[], &[]);
        assert_eq!(listing(&long).images.len(), MAX_LISTED_URL_BYTES / 4000);
        // In a batch of four, each job has its 64 entries but a quarter of the bytes.
        assert_eq!(
            ListingRoom::share_of(4).listing(&long).images.len(),
            MAX_LISTED_URL_BYTES / 4 / 4000
        );
        assert_eq!(ListingRoom::share_of(4).listing(&all).unlisted, 0);
        let huge = of(
            &["x".repeat(MAX_LISTED_URL_BYTES + 1), "short".to_owned()],
            &[],
            &["a".to_owned()],
        );
        let listed = listing(&huge);
        assert!(listed.images.is_empty());
        assert!(listed.audios.is_empty(), "nothing after an output that did not fit");
        assert_eq!(listed.unlisted, 3);
    }

    #[test]
    fn one_room_is_shared_by_the_results_of_one_answer_in_turn() {
        let mut room = ListingRoom::new();
        let first = urls(MAX_LISTED - 1, 10);
        let second = of(&urls(3, 10), &[], &[]);
        assert_eq!(room.listing(&of(&first, &[], &[])).unlisted, 0);
        let listed = room.listing(&second);
        assert_eq!((listed.images.len(), listed.unlisted), (1, 2));
        assert_eq!(room.listing(&second).unlisted, 3, "the room is used up");
    }
}
