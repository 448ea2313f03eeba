//! The journal's store tests, run on every backend: SQLite in a temporary directory and
//! PostgreSQL in a throwaway cluster (skipped, with a message, only where no PostgreSQL binaries
//! are found and this is not CI). Each test gets a fresh, empty journal; `Backend::open` gives
//! another handle on the same one, as another process (or replica) would have.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    postgres::PgStore, sqlite::SqliteStore, Admission, JobKey, JobQuery, JobRecord, JobStore, JobUpdate, Limits,
    NewJob, Owner, RecordedStatus, Refusal, Retention, SubmitOutcome,
};
use crate::runcomfy::JobStatus;

#[path = "../../tests/integration/common/pg.rs"]
pub(crate) mod pg;

pub(super) trait Backend: Sync {
    /// A new handle on this test's journal.
    fn open(&self) -> Box<dyn JobStore>;
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn JobStore> {
        Box::new(SqliteStore::open(&self.0.path().join("journal.sqlite3")).unwrap())
    }
}

pub(super) struct Postgres(pub(super) pg::Cluster);

impl Backend for Postgres {
    fn open(&self) -> Box<dyn JobStore> {
        Box::new(PgStore::open(&self.0.socket_url()).unwrap())
    }
}

/// Each test once per backend, in modules `sqlite` and `postgres`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $test() { super::$test(&super::Sqlite(tempfile::tempdir().unwrap())) } )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    if let Some(cluster) = super::pg::Cluster::start(stringify!($test)) {
                        super::$test(&super::Postgres(cluster))
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    a_submit_is_recorded_before_and_after_it_is_sent,
    updates_merge_and_a_finished_job_stays_finished,
    a_poll_that_did_not_move_is_known_unchanged_and_every_other_one_is_written,
    newest_first_with_a_status_filter_and_a_limit,
    retention_removes_old_rows_only,
    limits_refuse_inside_the_store_and_count_unknown_costs_at_their_estimate,
    each_owner_sees_changes_and_counts_only_their_own_jobs,
    concurrent_submits_from_several_handles_never_pass_a_limit_together,
    run_lengths_are_the_newest_succeeded_jobs_of_one_model_and_size_of_every_owner,
);

fn me() -> Owner {
    Owner::single()
}

fn job(prompt: &str, at: DateTime<Utc>) -> NewJob {
    NewJob {
        owner: me(),
        model: "m".into(),
        prompt: prompt.into(),
        size: "1024x1024(1:1)".into(),
        params: json!({"prompt": prompt}),
        submitted_at: at,
        estimate_usd: Some(0.5),
    }
}

fn begin(store: &dyn JobStore, job: &NewJob) -> JobKey {
    store.begin_submit(job, &Limits::default()).unwrap().admitted().unwrap()
}

fn submitted(store: &dyn JobStore, prompt: &str, at: DateTime<Utc>) -> String {
    let key = begin(store, &job(prompt, at));
    let id = format!("id-{prompt}");
    store
        .finish_submit(key, &SubmitOutcome::Accepted { request_id: id.clone() }, at)
        .unwrap();
    id
}

fn all(store: &dyn JobStore) -> Vec<JobRecord> {
    store
        .list(&JobQuery {
            owner: me(),
            status: None,
            limit: 1000,
        })
        .unwrap()
}

fn a_submit_is_recorded_before_and_after_it_is_sent(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let now = Utc::now();
    let key = begin(store, &job("a fox", now));
    assert_eq!(all(store)[0].status, RecordedStatus::Submitting);
    store
        .finish_submit(key, &SubmitOutcome::FateUnknown { error: "reset".into() }, now)
        .unwrap();
    let row = &all(store)[0];
    assert_eq!((row.status.as_str(), row.request_id.as_deref()), ("unknown", None));
    assert_eq!(row.status, RecordedStatus::FateUnknown);
    assert_eq!(row.error.as_deref(), Some("reset"));
    assert_eq!(row.params, json!({"prompt": "a fox"}));
}

fn updates_merge_and_a_finished_job_stays_finished(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let id = submitted(store, "a", Utc::now());
    let update = |u: JobUpdate| assert!(store.update(&me(), &id, &u, Utc::now()).unwrap());
    update(JobUpdate {
        status: Some(JobStatus::InQueue),
        queue_position: Some(3),
        ..Default::default()
    });
    assert_eq!(all(store)[0].queue_position, Some(3));
    update(JobUpdate {
        status: Some(JobStatus::Succeeded),
        images: vec!["http://x/1.png".into()],
        ..Default::default()
    });
    update(JobUpdate::saved(vec!["/tmp/1.png".into()]));
    update(JobUpdate::saved(vec!["/tmp/1.png".into(), "/tmp/2.png".into()]));
    // A late poll from another server.
    update(JobUpdate {
        status: Some(JobStatus::InProgress),
        ..Default::default()
    });
    let row = &all(store)[0];
    assert_eq!(row.status, RecordedStatus::Job(JobStatus::Succeeded));
    assert_eq!(row.queue_position, None);
    assert_eq!(row.images, ["http://x/1.png"]);
    assert_eq!(row.saved_paths, ["/tmp/1.png", "/tmp/2.png"]);
    assert!(row.finished_at.is_some());
    assert!(!store
        .update(&me(), "unknown-id", &JobUpdate::default(), Utc::now())
        .unwrap());
    assert_eq!(store.get(&me(), &id).unwrap().unwrap().images, ["http://x/1.png"]);
    assert_eq!(store.get(&me(), "unknown-id").unwrap(), None);
}

fn a_poll_that_did_not_move_is_known_unchanged_and_every_other_one_is_written(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let id = submitted(store, "a", Utc::now());
    let queued = |p| JobUpdate::status(&JobStatus::InQueue, Some(p));
    assert!(!store.unchanged(&me(), &id, &queued(3)), "not read yet");
    assert!(store.update(&me(), &id, &queued(3), Utc::now()).unwrap());
    assert!(store.unchanged(&me(), &id, &queued(3)));
    assert!(!store.unchanged(&me(), &id, &queued(2)));
    assert!(store.update(&me(), &id, &queued(2), Utc::now()).unwrap());
    assert_eq!(store.get(&me(), &id).unwrap().unwrap().queue_position, Some(2));
    // Another process moves the job on: this one's older news is still not written over it.
    let other = backend.open();
    let running = JobUpdate::status(&JobStatus::InProgress, None);
    assert!(other.update(&me(), &id, &running, Utc::now()).unwrap());
    assert!(
        store.unchanged(&me(), &id, &queued(2)),
        "this process already recorded it"
    );
    assert_eq!(
        store.get(&me(), &id).unwrap().unwrap().status,
        RecordedStatus::Job(JobStatus::InProgress)
    );
    assert!(!store.unchanged(&me(), &id, &running));
    assert!(store.update(&me(), &id, &running, Utc::now()).unwrap());
    assert_eq!(
        store.get(&me(), &id).unwrap().unwrap().status,
        RecordedStatus::Job(JobStatus::InProgress)
    );
    // A result carries more than a status: never skipped.
    let done = JobUpdate {
        status: Some(JobStatus::Succeeded),
        images: vec!["http://x/1.png".into()],
        ..Default::default()
    };
    assert!(!store.unchanged(&me(), &id, &done));
    assert!(!store.unchanged(&me(), "unknown-id", &running));
    assert!(!store.update(&me(), "unknown-id", &running, Utc::now()).unwrap());
    assert!(
        store.unchanged(&me(), "unknown-id", &running),
        "a job this journal does not have"
    );
}

fn newest_first_with_a_status_filter_and_a_limit(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    for (i, p) in ["a", "b", "c"].iter().enumerate() {
        submitted(store, p, t0 + chrono::Duration::minutes(i as i64));
    }
    store
        .update(
            &me(),
            "id-b",
            &JobUpdate {
                status: Some(JobStatus::Failed),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
    let prompts = |q: JobQuery| {
        store
            .list(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.prompt)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        prompts(JobQuery {
            owner: me(),
            status: None,
            limit: 10
        }),
        ["c", "b", "a"]
    );
    assert_eq!(
        prompts(JobQuery {
            owner: me(),
            status: None,
            limit: 2
        }),
        ["c", "b"]
    );
    assert_eq!(
        prompts(JobQuery {
            owner: me(),
            status: Some(RecordedStatus::Job(JobStatus::InQueue)),
            limit: 10
        }),
        ["c", "a"]
    );
}

fn retention_removes_old_rows_only(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let now = Utc::now();
    submitted(store, "ancient", now - chrono::Duration::days(100));
    submitted(store, "old", now - chrono::Duration::days(40));
    submitted(store, "recent", now - chrono::Duration::days(1));
    submitted(store, "new", now);
    let retention = Retention {
        max_age: chrono::Duration::days(30),
        max_jobs: 10,
    };
    assert_eq!(store.prune(&retention, now).unwrap(), 2);
    let left: Vec<String> = all(store).into_iter().map(|r| r.prompt).collect();
    assert_eq!(left, ["new", "recent"]);
    let retention = Retention {
        max_jobs: 1,
        ..retention
    };
    assert_eq!(store.prune(&retention, now).unwrap(), 1);
    assert_eq!(all(store)[0].prompt, "new");
    // Past the count bound, but within the limits' window: kept.
    submitted(store, "an hour ago", now - chrono::Duration::hours(1));
    assert_eq!(store.prune(&retention, now).unwrap(), 0);
    assert_eq!(all(store).len(), 2);
}

fn limits_refuse_inside_the_store_and_count_unknown_costs_at_their_estimate(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let now = Utc::now();
    let limits = Limits {
        max_spend_usd_per_day: Some(1.2),
        max_jobs_per_hour: Some(3),
    };
    let id = submitted(store, "a", now - chrono::Duration::hours(2));
    store
        .update(
            &me(),
            &id,
            &JobUpdate {
                cost_usd: Some(0.25),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    // 0.25 actual + 0.5 estimated: one more 0.5 fits (1.25 > 1.2 does not).
    submitted(store, "b", now - chrono::Duration::minutes(30));
    let refused = store.begin_submit(&job("c", now), &limits).unwrap();
    let Admission::Refused(Refusal::Spend {
        spent_usd,
        estimated_usd,
        ..
    }) = refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!((spent_usd, estimated_usd), (0.75, 0.5));
    assert_eq!(all(store).len(), 2, "a refused submit leaves no row");
    // A rejected submit (no job) costs nothing and does not count.
    let key = begin(store, &job("rejected", now));
    store
        .finish_submit(key, &SubmitOutcome::Rejected { error: "402".into() }, now)
        .unwrap();
    let cheap = NewJob {
        estimate_usd: Some(0.1),
        ..job("d", now)
    };
    assert!(matches!(
        store.begin_submit(&cheap, &limits).unwrap(),
        Admission::Admitted(_)
    ));
    let totals = store.spend(&me(), now).unwrap();
    assert_eq!(totals.all_recorded.jobs, 3);
    assert_eq!(totals.all_recorded.cost_usd, 0.25);
    assert!((totals.all_recorded.estimated_usd - 0.6).abs() < 1e-9);
    let days = store.usage(&me(), 7, now).unwrap();
    assert_eq!(days.iter().map(|d| d.tally.jobs).sum::<u64>(), 3);
}

fn each_owner_sees_changes_and_counts_only_their_own_jobs(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let now = Utc::now();
    let (alice, bob) = (Owner::from_stored("a1a1"), Owner::from_stored("b0b0"));
    let submit = |owner: &Owner, prompt: &str| {
        let key = begin(
            store,
            &NewJob {
                owner: owner.clone(),
                ..job(prompt, now)
            },
        );
        let id = format!("id-{prompt}");
        store
            .finish_submit(key, &SubmitOutcome::Accepted { request_id: id.clone() }, now)
            .unwrap();
        id
    };
    let alices = submit(&alice, "alice's fox");
    submit(&bob, "bob's owl");
    let listed = |owner: &Owner| {
        store
            .list(&JobQuery {
                owner: owner.clone(),
                status: None,
                limit: 10,
            })
            .unwrap()
            .into_iter()
            .map(|r| (r.prompt, r.owner))
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(&alice), [("alice's fox".to_owned(), alice.clone())]);
    assert_eq!(listed(&bob), [("bob's owl".to_owned(), bob.clone())]);
    assert_eq!(listed(&me()), [], "the single-user owner is an owner like any other");
    // Bob cannot read, nor change, Alice's job: to him it is unknown.
    assert!(store.get(&bob, &alices).unwrap().is_none());
    let done = JobUpdate {
        status: Some(JobStatus::Succeeded),
        cost_usd: Some(0.4),
        ..Default::default()
    };
    assert!(!store.update(&bob, &alices, &done, now).unwrap());
    assert!(!store.unchanged(&alice, &alices, &JobUpdate::status(&JobStatus::InQueue, None)));
    assert_eq!(
        store.get(&alice, &alices).unwrap().unwrap().status,
        RecordedStatus::Job(JobStatus::InQueue)
    );
    assert!(store.update(&alice, &alices, &done, now).unwrap());
    assert_eq!(store.spend(&alice, now).unwrap().today.cost_usd, 0.4);
    assert_eq!(store.spend(&bob, now).unwrap().today.jobs, 1);
    assert_eq!(store.spend(&bob, now).unwrap().today.cost_usd, 0.0);
    assert_eq!(store.usage(&bob, 1, now).unwrap()[0].tally.jobs, 1);
    // Limits are each owner's: Alice at her one job an hour does not stop Bob's second.
    let limits = Limits {
        max_jobs_per_hour: Some(1),
        ..Limits::default()
    };
    let next = |owner: &Owner| NewJob {
        owner: owner.clone(),
        ..job("again", now)
    };
    assert!(matches!(
        store.begin_submit(&next(&alice), &limits).unwrap(),
        Admission::Refused(Refusal::Jobs { jobs: 1, .. })
    ));
    assert!(matches!(
        store.begin_submit(&next(&me()), &limits).unwrap(),
        Admission::Admitted(_)
    ));
}

fn concurrent_submits_from_several_handles_never_pass_a_limit_together(backend: &dyn Backend) {
    // Six handles (six processes, or replicas) submit at once against three jobs an hour and
    // $1.25 a day at $0.50 a job: two fit by money, so exactly two are admitted.
    let limits = Limits {
        max_spend_usd_per_day: Some(1.25),
        max_jobs_per_hour: Some(3),
    };
    let stores: Vec<Box<dyn JobStore>> = (0..6).map(|_| backend.open()).collect();
    let start = Arc::new(Barrier::new(stores.len()));
    let admitted = std::thread::scope(|scope| {
        let running: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let start = start.clone();
                scope.spawn(move || {
                    start.wait();
                    store
                        .begin_submit(&job(&format!("racer {i}"), Utc::now()), &limits)
                        .unwrap()
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|a| matches!(a, Admission::Admitted(_)))
            .count()
    });
    assert_eq!(admitted, 2);
    assert_eq!(all(stores[0].as_ref()).len(), 2);
}

fn run_lengths_are_the_newest_succeeded_jobs_of_one_model_and_size_of_every_owner(backend: &dyn Backend) {
    let owned = backend.open();
    let store = owned.as_ref();
    let start = Utc::now() - chrono::Duration::minutes(10);
    let finish = |prompt: &str, owner: &Owner, model: &str, at_s: i64, took_s: i64, status: JobStatus| {
        let at = start + chrono::Duration::seconds(at_s);
        let key = begin(
            store,
            &NewJob {
                owner: owner.clone(),
                model: model.into(),
                ..job(prompt, at)
            },
        );
        let id = format!("id-{prompt}");
        store
            .finish_submit(key, &SubmitOutcome::Accepted { request_id: id.clone() }, at)
            .unwrap();
        let done = JobUpdate {
            status: Some(status),
            ..Default::default()
        };
        assert!(store
            .update(owner, &id, &done, at + chrono::Duration::seconds(took_s))
            .unwrap());
    };
    let other = Owner::from_stored("ab12");
    finish("old", &me(), "m", 0, 30, JobStatus::Succeeded);
    finish("theirs", &other, "m", 10, 20, JobStatus::Succeeded);
    finish("failed", &me(), "m", 20, 5, JobStatus::Failed);
    finish("other model", &me(), "n", 30, 7, JobStatus::Succeeded);
    finish("new", &me(), "m", 40, 12, JobStatus::Succeeded);
    // Still running: no length yet.
    submitted(store, "running", start + chrono::Duration::seconds(50));

    assert_eq!(
        store.run_lengths("m", "1024x1024(1:1)", 10).unwrap(),
        [12_000, 20_000, 30_000]
    );
    assert_eq!(store.run_lengths("m", "1024x1024(1:1)", 2).unwrap(), [12_000, 20_000]);
    assert!(
        store.run_lengths("m", "2048x2048(1:1)", 10).unwrap().is_empty(),
        "another size"
    );
}
