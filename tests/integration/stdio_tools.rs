//! The four job tools over stdio, driven by rmcp's client against the real binary and the
//! simulator: happy paths, every error class, and arguments that must never reach the network.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn submit_poll_and_fetch_real_images() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;

    let result = call(
        &client,
        "generate_image",
        json!({"prompt": "a lighthouse at dusk", "size": "2560x1440"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let submitted = structured(&result);
    assert_eq!(submitted["status"], "in_queue");
    assert_eq!(submitted["size"], "2560x1440(16:9)");
    let id = submitted["request_id"].as_str().unwrap().to_owned();
    assert!(text(&result).contains(&id) && text(&result).contains("check_status"));

    // The simulator received the upstream's own field name, and only what was chosen: the
    // model applies its own defaults to the rest.
    let job = Control::new(&sim).job(&id).await;
    assert_eq!(
        job["request"],
        json!({"prompt": "a lighthouse at dusk", "width×height": "2560x1440(16:9)"})
    );

    let seen = poll_until_finished(&client, &id).await;
    let statuses: Vec<&str> = seen.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.first(), Some(&"in_queue"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"succeeded"), "{statuses:?}");
    assert!(
        seen[0]["queue_position"].as_u64().is_some(),
        "a queued job shows its position"
    );

    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["finished"], true);
    let url = out["images"][0].as_str().expect("an image URL");
    assert!(text(&result).contains(url));

    let png = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (2560, 1440));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn get_result_before_completion_returns_the_current_status() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let id = submit(&client, json!({"prompt": "a cat"})).await;
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["finished"], false);
    assert!(out["images"].as_array().unwrap().is_empty());
    assert!(["in_queue", "in_progress"].contains(&out["status"].as_str().unwrap()));
    assert!(text(&result).contains("again"));
}

#[tokio::test]
async fn cancel_while_queued_and_while_running() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);

    // Long queue: cancellable.
    control
        .config(json!({"initial_queue_position": 50, "queue_step_ms": 1000}))
        .await;
    let queued = submit(&client, json!({"prompt": "a queued cat"})).await;
    let result = call(&client, "cancel_request", json!({"request_id": queued})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["outcome"], "cancelled");
    assert_eq!(control.job(&queued).await["status"], "cancelled");
    let status = call(&client, "check_status", json!({"request_id": queued})).await;
    assert_eq!(structured(&status)["status"], "cancelled");
    assert_eq!(structured(&status)["finished"], true);
    let result = call(&client, "get_result", json!({"request_id": queued})).await;
    assert!(!is_error(&result));
    assert_eq!(structured(&result)["status"], "cancelled");

    // No queue, long run: in progress at once, not cancellable.
    control
        .config(json!({"initial_queue_position": 0, "run_ms": 60000}))
        .await;
    let running = submit(&client, json!({"prompt": "a running cat"})).await;
    let result = call(&client, "cancel_request", json!({"request_id": running})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["outcome"], "not_cancellable");
    assert_eq!(out["status"], "in_progress");
    assert!(out["message"].as_str().unwrap().contains("only queued jobs"));
    assert_eq!(control.job(&running).await["status"], "in_progress");
}

#[tokio::test]
async fn unknown_request_id_says_so() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    for tool in ["check_status", "get_result", "cancel_request"] {
        let result = call(
            &client,
            tool,
            json!({"request_id": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
        assert!(is_error(&result), "{tool}");
        assert!(text(&result).contains("no such request"), "{tool}: {}", text(&result));
    }
}

#[tokio::test]
async fn hostile_request_ids_never_reach_the_network() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    for bad in ["../x", "a/b", "%2F", "a?b", "a#b", "", "x".repeat(200).as_str(), "a b"] {
        for tool in ["check_status", "get_result", "cancel_request"] {
            let result = call(&client, tool, json!({"request_id": bad})).await;
            assert!(is_error(&result), "{tool} accepted {bad:?}");
            assert!(text(&result).contains("request_id"), "{}", text(&result));
        }
    }
    let wrong_type = call(&client, "check_status", json!({"request_id": 42})).await;
    assert!(is_error(&wrong_type));
    let missing = call(&client, "get_result", json!({})).await;
    assert!(
        is_error(&missing) && text(&missing).contains("request_id"),
        "{}",
        text(&missing)
    );
    let stats = sim.stats();
    assert_eq!((stats.status_calls, stats.result_calls, stats.cancel_calls), (0, 0, 0));
}

#[tokio::test]
async fn invalid_input_is_refused_before_any_http_call() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;

    let result = call(&client, "generate_image", json!({"prompt": "x", "size": "3000x3000"})).await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(
        message.contains("`size`") && message.contains("6198x2656(21:9)") && message.contains("1024x1024(1:1)"),
        "{message}"
    );

    let result = call(&client, "generate_image", json!({"prompt": "a".repeat(801)})).await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("`prompt`") && text(&result).contains("801 characters"),
        "{}",
        text(&result)
    );

    for (arguments, field) in [
        (json!({}), "prompt"),
        (json!({"prompt": ""}), "prompt"),
        (json!({"prompt": 5}), "prompt"),
        (json!({"prompt": "x", "scale": 1.5}), "scale"),
        (json!({"prompt": "x", "scale": "high"}), "scale"),
        (json!({"prompt": "x", "force_single": "yes"}), "force_single"),
        (json!({"prompt": "x", "width×height": "1024x1024(1:1)"}), "width×height"),
        (json!({"prompt": "x", "seed": 7}), "seed"),
    ] {
        let result = call(&client, "generate_image", arguments.clone()).await;
        assert!(is_error(&result), "{arguments} was accepted");
        assert!(
            text(&result).contains(&format!("`{field}`")),
            "{arguments}: {}",
            text(&result)
        );
    }
    assert_eq!(sim.stats().submissions, 0, "nothing invalid reached the upstream");

    // Exactly 800 characters of a multi-byte letter (1,600 bytes) is within the limit.
    let id = submit(
        &client,
        json!({"prompt": "é".repeat(800), "size": "1024x1024(1:1)", "scale": 1, "force_single": true}),
    )
    .await;
    assert_eq!(
        Control::new(&sim).job(&id).await["request"]["prompt"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        800
    );
    assert_eq!(sim.stats().submissions, 1);
}

/// A transient failure of a read is retried and the call succeeds; a submit is never sent again
/// after an answer, a 429 included (nothing says that a 429 made no job), nor after an ambiguous
/// failure.
#[tokio::test]
async fn transient_faults_are_retried_and_nothing_is_submitted_twice() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);

    control
        .fault(json!({"endpoint": "submit", "status": 429, "retry_after": 1}))
        .await;
    let limited = call(&client, "generate_image", json!({"prompt": "a 429"})).await;
    assert!(is_error(&limited), "{}", text(&limited));
    assert!(
        text(&limited).contains("fate of this submit is unknown"),
        "{}",
        text(&limited)
    );
    assert_eq!(sim.stats().submissions, 1, "the 429 was not sent again");
    let id = submit(&client, json!({"prompt": "after a 429"})).await;
    let jobs = control.jobs().await;
    assert_eq!(
        jobs.len(),
        1,
        "the 429 created no job, the next submit created one: {jobs:?}"
    );
    assert_eq!(sim.stats().submissions, 2);

    for endpoint in ["status", "result", "cancel"] {
        control
            .fault(json!({"endpoint": endpoint, "status": 502, "times": 2}))
            .await;
    }
    control.fault(json!({"endpoint": "status", "kind": "reset"})).await;
    let state = call(&client, "check_status", json!({"request_id": id})).await;
    assert!(!is_error(&state), "{}", text(&state));
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let cancel = call(&client, "cancel_request", json!({"request_id": id})).await;
    assert!(!is_error(&cancel), "{}", text(&cancel));

    // A reset after the submit was sent: the job exists upstream, the server must not resend it.
    control.fault(json!({"endpoint": "submit", "kind": "reset"})).await;
    let lost = call(&client, "generate_image", json!({"prompt": "fate unknown"})).await;
    assert!(
        is_error(&lost) && text(&lost).contains("may have reached RunComfy"),
        "{}",
        text(&lost)
    );
    assert_eq!(sim.stats().submissions, 3, "exactly one more submission");
}

/// Each upstream error class becomes an isError result whose text tells the user what to do.
#[tokio::test]
async fn upstream_error_classes_are_actionable() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);
    let cases = [
        (
            json!({"endpoint": "submit", "status": 402, "body": {"error_code": 400002, "error_message": "Insufficient balance"}}),
            "top up your RunComfy balance",
        ),
        (
            json!({"endpoint": "submit", "status": 200, "body": {"error_code": 400002, "error_message": "Insufficient balance"}}),
            "top up your RunComfy balance",
        ),
        (
            json!({"endpoint": "submit", "status": 401, "body": {"error_code": 400004, "error_message": "Invalid token"}}),
            "RUNCOMFY_API_KEY",
        ),
        (
            json!({"endpoint": "submit", "status": 403, "body": {"error_code": 403001, "error_message": "Forbidden"}}),
            "permission",
        ),
        (
            json!({"endpoint": "submit", "status": 422, "body": {"error_code": 422001, "error_message": "Validation failed", "detail": [{"loc": ["body", "prompt"], "msg": "unsafe content"}]}}),
            "prompt: unsafe content",
        ),
        (
            json!({"endpoint": "submit", "status": 429, "retry_after": 60}),
            "HTTP 429 (rate limiting)",
        ),
        (
            json!({"endpoint": "submit", "status": 500, "body": {"error_code": 500001, "error_message": "boom"}}),
            "fate of this submit is unknown",
        ),
        (json!({"endpoint": "submit", "kind": "malformed"}), "may exist"),
    ];
    for (rule, expected) in cases {
        control.fault(rule.clone()).await;
        let result = call(&client, "generate_image", json!({"prompt": "a cat"})).await;
        assert!(is_error(&result), "{rule}: {}", text(&result));
        assert!(text(&result).contains(expected), "{rule}: {}", text(&result));
        assert!(!text(&result).contains(TOKEN), "the token leaked: {}", text(&result));
    }
    // Read tools keep the request_id in the message so the model can retry.
    let id = submit(&client, json!({"prompt": "a cat"})).await;
    control
        .fault(json!({"endpoint": "status", "status": 503, "times": 10, "body": {"error_message": "maintenance"}}))
        .await;
    let result = call(&client, "check_status", json!({"request_id": id})).await;
    assert!(is_error(&result) && text(&result).contains(&id), "{}", text(&result));
}

#[tokio::test]
async fn wrong_token_unreachable_upstream_and_timeout() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        required_token: Some("the-right-token".into()),
        ..fast_config()
    })
    .await;
    let client = connect(&sim.base_url(), &[]).await;
    let result = call(&client, "generate_image", json!({"prompt": "a cat"})).await;
    assert!(
        is_error(&result) && text(&result).contains("rejected the API token"),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains("No job was created"));

    // A port nobody listens on: the request provably never left.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = connect(&format!("http://{closed}"), &[]).await;
    let result = call(&client, "generate_image", json!({"prompt": "a cat"})).await;
    assert!(
        is_error(&result) && text(&result).contains("Could not reach RunComfy"),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains("No job was created"));

    // A submit that times out may have created a job: the user is told so.
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[("RUNCOMFY_TIMEOUT_SECS", "1")]).await;
    Control::new(&sim)
        .fault(json!({"endpoint": "submit", "delay_ms": 2500}))
        .await;
    let result = call(&client, "generate_image", json!({"prompt": "a cat"})).await;
    assert!(
        is_error(&result) && text(&result).contains("did not answer"),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains("NOT sent again"), "{}", text(&result));
}
