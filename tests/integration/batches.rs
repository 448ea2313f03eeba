//! Batches of up to 8: each job of a batch is checked against the limits on its own, so a batch
//! of 8 under a spending limit that admits 5 submits five, refuses three saying why, and loses
//! none of the five.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_batch_of_8_under_a_limit_that_admits_5_submits_5_and_refuses_3() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    // One image at the simulator's $0.03 each: five fit in $0.16, a sixth does not.
    let bin = Bin::serve()
        .args(["--max-spend-usd-per-day", "0.16"])
        .upstream(&sim.base_url())
        .journal_in(state.path());
    let client = start_stdio((), bin).await.client;
    let batch = call(
        &client,
        "generate_image",
        json!({"prompt": "a paper boat", "force_single": true, "count": 8}),
    )
    .await;
    assert!(!is_error(&batch), "{}", text(&batch));
    let out = structured(&batch);
    let ids = out["request_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 5, "{}", text(&batch));
    let failures = out["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3, "{out}");
    for failure in failures {
        assert!(
            failure.as_str().unwrap().contains("Spending limit reached"),
            "{failure}"
        );
    }
    // What was started and its estimated range come first, before the ids: five jobs at $0.03,
    // not the eight asked for.
    let said = text(&batch);
    let first = said.lines().next().unwrap();
    let listed: Vec<&str> = ids.iter().map(|id| id.as_str().unwrap()).collect();
    assert!(
        first.starts_with("Submitted 5 Dreamina 4.0 text-to-image jobs (")
            && first.ends_with(&format!(
                "), estimated $0.15 in all: jobs {}. Status: in_queue.",
                listed.join(", ")
            )),
        "{first}"
    );
    assert_eq!(sim.stats().submissions, 5, "the refused three were not sent");
    let control = Control::new(&sim);
    for id in ids {
        let job = control.job(id.as_str().unwrap()).await;
        assert_eq!(job["request"]["prompt"], "a paper boat", "{job}");
    }
    // Nothing lost from the five: each is journaled, and each finishes with its image.
    let journal = call(&client, "list_jobs", json!({})).await;
    let mut journaled: Vec<&str> = structured(&journal)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["request_id"].as_str().unwrap())
        .collect();
    journaled.sort_unstable();
    let mut sent = listed.clone();
    sent.sort_unstable();
    assert_eq!(journaled, sent, "{}", text(&journal));
    for id in &listed {
        eventually(
            async || {
                let result = call(&client, "get_result", json!({ "request_id": id })).await;
                let out = structured(&result).clone();
                match out["status"] == json!("succeeded") && out["images"].as_array().is_some_and(|i| i.len() == 1) {
                    true => Ok(()),
                    false => Err(out),
                }
            },
            "each of the five to finish with its image",
        )
        .await;
    }
    client.cancel().await.unwrap();
}

/// run_model takes a count too, through the same submit loop: under the same limit, with
/// `wait: false`, five of eight jobs are submitted and listed, three refused with the reason.
#[tokio::test]
async fn a_run_model_batch_of_8_under_a_limit_that_admits_5_submits_5_and_refuses_3() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve()
        .args(["--max-spend-usd-per-day", "0.16"])
        .upstream(&sim.base_url())
        .journal_in(state.path());
    let client = start_stdio((), bin).await.client;
    let batch = call(
        &client,
        "run_model",
        json!({
            "model_id": "bytedance/dreamina-4-0/text-to-image",
            "input": {"prompt": "a paper crane", "force_single": true},
            "count": 8,
            "wait": false,
        }),
    )
    .await;
    let said = text(&batch);
    assert!(!is_error(&batch), "{said}");
    let out = structured(&batch);
    let rows = out["jobs"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "{out}");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["request_id"].as_str()).collect();
    assert_eq!(ids.len(), 5, "{out}");
    let refused: Vec<&str> = rows.iter().filter_map(|r| r["error"].as_str()).collect();
    assert_eq!(refused.len(), 3, "{out}");
    for reason in refused {
        assert!(reason.contains("Spending limit reached"), "{reason}");
    }
    for id in &ids {
        assert!(said.contains(id), "every request_id is in the answer: {said}");
    }
    assert!(said.contains("Do not call run_model again"), "{said}");
    // The batch's estimated range on the answer's first line: of the five submitted, not eight.
    let first = said.lines().next().unwrap();
    assert_eq!(first, "8 jobs: 5 in_queue, 3 not_submitted. Estimated $0.15 in all.");
    assert_eq!(out["estimated_cost_usd"]["jobs"], json!(5), "{out}");
    assert_eq!(out["estimated_cost_usd"]["max_usd"], json!(0.15), "{out}");
    assert_eq!(sim.stats().submissions, 5, "the refused three were not sent");
    let control = Control::new(&sim);
    for id in ids {
        let job = control.job(id).await;
        assert_eq!(job["request"]["prompt"], "a paper crane", "{job}");
    }
    client.cancel().await.unwrap();
}
