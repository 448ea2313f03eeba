//! What this process last wrote or read of each job's status, so that a poll of a job that did not
//! move is known to change nothing without a transaction: a check_status every few seconds on a
//! queued job then costs a map lookup instead of a trip to the blocking pool, a `BEGIN IMMEDIATE`
//! and a row read (measured: most of the journal's share of a status call).
//!
//! Filled only by the store, under its connection's lock, so it follows the order of the writes.
//! Another process may have moved the row since: it wrote a newer status (an upstream status only
//! goes forward), which the skipped, older one would not have overwritten for the better.

use std::{collections::HashMap, sync::Mutex};

use super::{JobUpdate, Owner, RecordedStatus};

/// Jobs remembered at most; past it the memory starts again (each job then costs one more read).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct Recent {
    /// By request id, with the owner it was seen for: what one owner saw says nothing about
    /// another owner's view (a job that is another's is "unknown" to them), so a lookup by
    /// another owner misses. Keyed by the id alone, so that a lookup allocates nothing.
    by_id: Mutex<HashMap<String, (Owner, Seen)>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// The journal has no row with this request id (a job submitted elsewhere).
    Unknown,
    Row {
        status: RecordedStatus,
        queue_position: Option<u32>,
    },
}

impl Recent {
    /// Whether applying `update` to the row of `request_id` is known to change nothing: a status
    /// (and queue position) alone, equal to the row's, or a non-terminal one for a finished job.
    pub(super) fn unchanged(&self, owner: &Owner, request_id: &str, update: &JobUpdate) -> bool {
        let Some(status) = status_only(update) else {
            return false;
        };
        let by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        match by_id
            .get(request_id)
            .filter(|(seen_by, _)| seen_by == owner)
            .map(|(_, seen)| seen)
        {
            None => false,
            Some(Seen::Unknown) => true,
            Some(Seen::Row {
                status: row,
                queue_position,
            }) => {
                (row.is_final() && !status.is_terminal())
                    || (matches!(row, RecordedStatus::Job(s) if s == status)
                        && *queue_position == update.queue_position)
            }
        }
    }

    /// The row of `request_id` as `owner` just wrote or read it; `None`: the journal has no such
    /// row of `owner`'s.
    pub(super) fn saw(&self, owner: &Owner, request_id: &str, row: Option<(&RecordedStatus, Option<u32>)>) {
        let seen = match row {
            None => Seen::Unknown,
            Some((status, queue_position)) => Seen::Row {
                status: status.clone(),
                queue_position,
            },
        };
        let mut by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        if by_id.len() >= CAPACITY && !by_id.contains_key(request_id) {
            by_id.clear();
        }
        match by_id.get_mut(request_id) {
            Some((seen_by, entry)) => {
                if seen_by != owner {
                    *seen_by = owner.clone();
                }
                *entry = seen;
            }
            None => {
                by_id.insert(request_id.to_owned(), (owner.clone(), seen));
            }
        }
    }

    /// Forgets `request_id`: its row changed in a way not worth tracking here.
    pub(super) fn forget(&self, request_id: &str) {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner()).remove(request_id);
    }
}

/// The status of an update that carries nothing else.
fn status_only(update: &JobUpdate) -> Option<&crate::runcomfy::JobStatus> {
    let JobUpdate {
        status,
        queue_position: _,
        images,
        videos,
        saved_paths,
        error,
        cost_usd,
    } = update;
    (images.is_empty() && videos.is_empty() && saved_paths.is_empty() && error.is_none() && cost_usd.is_none())
        .then_some(status.as_ref())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runcomfy::JobStatus;

    fn me() -> Owner {
        Owner::single()
    }

    fn queued(position: u32) -> JobUpdate {
        JobUpdate::status(&JobStatus::InQueue, Some(position))
    }

    #[test]
    fn only_a_status_equal_to_the_remembered_row_is_unchanged() {
        let recent = Recent::default();
        assert!(!recent.unchanged(&me(), "a", &queued(3)), "nothing remembered yet");
        recent.saw(&me(), "a", Some((&RecordedStatus::Job(JobStatus::InQueue), Some(3))));
        assert!(recent.unchanged(&me(), "a", &queued(3)));
        assert!(!recent.unchanged(&me(), "a", &queued(2)), "the queue moved");
        assert!(!recent.unchanged(&me(), "a", &JobUpdate::status(&JobStatus::InProgress, None)));
        let with_urls = JobUpdate {
            images: vec!["https://x/1.png".into()],
            ..queued(3)
        };
        assert!(!recent.unchanged(&me(), "a", &with_urls), "more than a status");
        recent.forget("a");
        assert!(!recent.unchanged(&me(), "a", &queued(3)));
    }

    #[test]
    fn a_finished_row_ignores_late_non_terminal_polls_but_not_terminal_ones() {
        let recent = Recent::default();
        recent.saw(&me(), "a", Some((&RecordedStatus::Job(JobStatus::Succeeded), None)));
        assert!(recent.unchanged(&me(), "a", &JobUpdate::status(&JobStatus::InProgress, None)));
        assert!(recent.unchanged(&me(), "a", &JobUpdate::status(&JobStatus::Succeeded, None)));
        assert!(!recent.unchanged(&me(), "a", &JobUpdate::status(&JobStatus::Failed, None)));
    }

    #[test]
    fn what_one_owner_saw_says_nothing_to_another() {
        let recent = Recent::default();
        let other = Owner::from_stored("ab12");
        recent.saw(&other, "theirs", None);
        assert!(recent.unchanged(&other, "theirs", &queued(1)));
        assert!(
            !recent.unchanged(&me(), "theirs", &queued(1)),
            "unknown to them is not unknown to me"
        );
        recent.saw(
            &me(),
            "theirs",
            Some((&RecordedStatus::Job(JobStatus::InQueue), Some(1))),
        );
        assert!(recent.unchanged(&me(), "theirs", &queued(1)));
        assert!(!recent.unchanged(&other, "theirs", &queued(1)));
    }

    #[test]
    fn an_unknown_job_stays_unknown_and_the_memory_is_bounded() {
        let recent = Recent::default();
        recent.saw(&me(), "elsewhere", None);
        assert!(recent.unchanged(&me(), "elsewhere", &queued(1)));
        for i in 0..CAPACITY + 1 {
            recent.saw(&me(), &format!("job-{i}"), None);
        }
        let remembered = recent.by_id.lock().unwrap().len();
        assert!(remembered <= CAPACITY, "{remembered}");
    }
}
