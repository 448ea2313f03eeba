//! `generate_variations`: on a Dreamina job and on a job `run_model` started, exactly `count` new
//! jobs, each sent the parent's own recipe (the simulator's job view shows the bodies it got),
//! the prompt nudged when asked; each under the server's limits (a job limit admits some of a
//! batch and refuses the rest, saying why); a job this machine did not record is refused before
//! anything is sent.

use serde_json::{json, Value};

use crate::common::*;

/// The body the simulator received for job `id`.
async fn body(control: &Control, id: &str) -> Value {
    control.job(id).await["request"].clone()
}

fn ids(result: &rmcp::model::CallToolResult) -> Vec<String> {
    structured(result)["request_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn variations_of_a_dreamina_job_and_of_a_model_job_carry_the_parents_recipe() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let client = start_stdio((), Bin::serve().upstream(&sim.base_url()).journal_in(state.path()))
        .await
        .client;
    let control = Control::new(&sim);

    let parent = call(
        &client,
        "generate_image",
        json!({"prompt": "a red kite over hills", "size": "2560x1440", "scale": 0.8, "force_single": true}),
    )
    .await;
    assert!(!is_error(&parent), "{}", text(&parent));
    let parent_id = structured(&parent)["request_id"].as_str().unwrap().to_owned();
    let parent_body = body(&control, &parent_id).await;

    let varied = call(
        &client,
        "generate_variations",
        json!({"request_id": format!("{parent_id}#1"), "count": 3}),
    )
    .await;
    assert!(!is_error(&varied), "{}", text(&varied));
    let new = ids(&varied);
    assert_eq!(new.len(), 3, "{}", text(&varied));
    assert_eq!(control.jobs().await.len(), 4, "exactly count new jobs");
    for id in &new {
        assert_ne!(id, &parent_id);
        assert_eq!(body(&control, id).await, parent_body, "job {id}: the parent's recipe");
    }
    assert_eq!(structured(&varied)["varied"], json!(parent_id));
    // What was started and its estimated range first, then the ids.
    assert_eq!(
        text(&varied).lines().next().unwrap(),
        format!(
            "Submitted 3 variations of job {parent_id} (bytedance/dreamina-4-0/text-to-image, \"a red kite over hills\"), estimated $0.09 in all: jobs {}. Status: in_queue.",
            new.join(", ")
        )
    );

    // A job run_model started, on a model that is not Dreamina, nudged.
    let model = "google/nano-banana-2-lite/text-to-image";
    let run = call(
        &client,
        "run_model",
        json!({"model_id": model, "input": {"prompt": "a lighthouse", "aspect_ratio": "16:9"}, "wait": false}),
    )
    .await;
    assert!(!is_error(&run), "{}", text(&run));
    let run_id = structured(&run)["request_id"].as_str().unwrap().to_owned();
    let run_body = body(&control, &run_id).await;
    let nudged = call(
        &client,
        "generate_variations",
        json!({"request_id": run_id, "count": 2, "nudge": "at dusk"}),
    )
    .await;
    assert!(!is_error(&nudged), "{}", text(&nudged));
    let new = ids(&nudged);
    assert_eq!(new.len(), 2, "{}", text(&nudged));
    assert_eq!(control.jobs().await.len(), 7, "exactly count new jobs");
    let mut expected = run_body.clone();
    expected["prompt"] = json!("a lighthouse. at dusk");
    for id in &new {
        assert_eq!(control.job(id).await["model"], json!(model));
        assert_eq!(
            body(&control, id).await,
            expected,
            "job {id}: the parent's input, nudged"
        );
    }

    // Not recorded here: refused, nothing sent.
    let unknown = call(
        &client,
        "generate_variations",
        json!({"request_id": "0badc0de-0000-4000-8000-000000000000"}),
    )
    .await;
    assert!(is_error(&unknown), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("not recorded on this machine"),
        "{}",
        text(&unknown)
    );
    assert_eq!(control.jobs().await.len(), 7);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn each_variation_is_held_to_the_limits() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve()
        .args(["--max-jobs-per-hour", "3"])
        .upstream(&sim.base_url())
        .journal_in(state.path());
    let client = start_stdio((), bin).await.client;
    let parent = call(
        &client,
        "generate_image",
        json!({"prompt": "a lone tree", "force_single": true}),
    )
    .await;
    let parent_id = structured(&parent)["request_id"].as_str().unwrap().to_owned();
    let varied = call(
        &client,
        "generate_variations",
        json!({"request_id": parent_id, "count": 3}),
    )
    .await;
    assert!(!is_error(&varied), "{}", text(&varied));
    assert_eq!(ids(&varied).len(), 2, "two fit under the limit: {}", text(&varied));
    let failures = structured(&varied)["failures"].as_array().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].as_str().unwrap().contains("Job limit reached"),
        "{failures:?}"
    );
    assert_eq!(sim.stats().submissions, 3, "the refused one was not sent");
    client.cancel().await.unwrap();
}
