//! The account balance (`GET /prod/v2/balance`, as RunComfy's CLI and MCP server read it), through
//! the real binary and the simulator: beside list_jobs' spending, in the `usage` report and beside
//! estimates; read with the caller's key on a team server; and never a reason for a call to fail.

use crate::common::http::{answer, rpc, HttpServer};
use crate::common::*;
use runcomfy_mcp::simulator::{SimConfig, TokenUse};
use serde_json::{json, Value};

fn usd(value: &Value) -> f64 {
    (value.as_f64().unwrap_or_else(|| panic!("not an amount: {value}")) * 1e6).round() / 1e6
}

/// The simulator's balance goes down as jobs are charged, in the answer RunComfy publishes.
#[tokio::test]
async fn the_simulator_serves_a_balance_that_goes_down_as_jobs_are_charged() {
    let sim = simulator(SimConfig {
        balance_usd: Some(1.0),
        ..fast_config()
    })
    .await;
    let balance = async || -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/prod/v2/balance", sim.base_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let before = balance().await;
    assert_eq!(
        before,
        json!({"balance_usd": 1.0, "balance_microdollars": 1_000_000, "currency": "USD"})
    );
    let client = connect(&sim.base_url(), &[]).await;
    submit(&client, json!({"prompt": "a paid fox", "force_single": true})).await;
    assert_eq!(usd(&balance().await["balance_usd"]), 0.97);
    // No key, no balance.
    let anonymous = reqwest::get(format!("{}/prod/v2/balance", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    client.cancel().await.unwrap();
}

/// list_jobs shows the balance beside the spending, and an estimate says how far it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_jobs_and_estimates_show_the_balance() {
    let sim = simulator(SimConfig {
        balance_usd: Some(3.0),
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve().upstream(&sim.base_url()).journal_in(state.path());
    let client = start_stdio((), bin).await.client;

    let listed = call(&client, "list_jobs", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    assert_eq!(usd(&structured(&listed)["balance_usd"]), 3.0, "{}", text(&listed));
    assert!(text(&listed).contains("RunComfy balance: $3.00."), "{}", text(&listed));

    let submitted = call(
        &client,
        "generate_image",
        json!({"prompt": "a fox", "force_single": true}),
    )
    .await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    // $3.00 (or $2.97 once this job is charged, if the brief cache has expired) at $0.03 an image.
    let said = text(&submitted);
    assert!(
        said.contains("your RunComfy balance ($3.00) covers about 100 such images")
            || said.contains("your RunComfy balance ($2.97) covers about 99 such images"),
        "{said}"
    );
    client.cancel().await.unwrap();
}

/// `usage` prints the balance read with the key in the environment, and says why when it cannot.
/// (Two threads: the blocking wait for `usage` must leave the simulator one to answer on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_prints_the_balance() {
    let sim = simulator(SimConfig {
        balance_usd: Some(12.5),
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let usage = |with_key: bool| {
        let mut bin = Bin::new(["usage"])
            .journal_in(state.path())
            .env("RUNCOMFY_BALANCE_BASE_URL", sim.base_url());
        if with_key {
            bin = bin.env("RUNCOMFY_API_KEY", TOKEN);
        }
        let output = bin.std().output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let printed = usage(true);
    assert!(
        printed.contains("RunComfy balance: $12.50 (read from RunComfy just now)."),
        "{printed}"
    );
    let printed = usage(false);
    assert!(
        printed.contains("RunComfy balance: not shown (no RUNCOMFY_API_KEY in the environment"),
        "{printed}"
    );
}

/// A balance that cannot be read is left out: the calls it decorates answer as before.
#[tokio::test]
async fn an_unreadable_balance_is_left_out_and_fails_nothing() {
    let sim = simulator(fast_config()).await;
    // A port with nothing listening: the balance read is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let balance_url = format!("http://{closed}");
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve()
        .upstream(&sim.base_url())
        .journal_in(state.path())
        .args(["--balance-base-url", &balance_url]);
    let client = start_stdio((), bin).await.client;

    let submitted = call(
        &client,
        "generate_image",
        json!({"prompt": "a fox", "force_single": true}),
    )
    .await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    assert!(
        text(&submitted).contains("Estimated cost $0.03 ("),
        "{}",
        text(&submitted)
    );
    assert!(!text(&submitted).contains("balance"), "{}", text(&submitted));
    let listed = call(&client, "list_jobs", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    assert!(structured(&listed).get("balance_usd").is_none(), "{}", text(&listed));
    assert!(!text(&listed).contains("RunComfy balance"), "{}", text(&listed));
    client.cancel().await.unwrap();
}

/// On a team server each person's balance is read with their own key.
#[tokio::test]
async fn per_user_keys_read_each_callers_own_balance() {
    const ALICE: &str = "rc-alice-key-balance-1";
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        &sim.base_url(),
        &["--per-user-keys", "--stateless"],
        &[
            ("RUNCOMFY_NO_JOURNAL", "false"),
            ("RUNCOMFY_STATE_DIR", state.path().to_str().unwrap()),
        ],
    )
    .await;
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-runcomfy-api-key", ALICE)
        .json(&rpc(1, "tools/call", json!({"name": "list_jobs", "arguments": {}})))
        .send()
        .await
        .unwrap();
    let listed = answer(response, 1).await;
    assert_eq!(listed["result"]["isError"], json!(false), "{listed}");
    assert_eq!(
        usd(&listed["result"]["structuredContent"]["balance_usd"]),
        100.0,
        "{listed}"
    );
    let uses: Vec<TokenUse> = reqwest::get(format!("{}/__sim/tokens", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let balance_reads: Vec<&TokenUse> = uses.iter().filter(|u| u.call == "balance").collect();
    assert!(!balance_reads.is_empty(), "{uses:?}");
    assert!(balance_reads.iter().all(|u| u.token == ALICE), "{uses:?}");
    server.stop().await;
}
