//! A person's own confirm threshold (issue 36 item 3, "also settable per person where people
//! sign in"): the consent page's "Ask me before spending more than" field is checked (a
//! non-negative amount, at most the operator's `--confirm-above-usd`; blank: the server's), kept
//! with the grant in the journal's database (SQLite and PostgreSQL), and applied to that person's
//! calls only: Alice, who asked to be asked above $0.10, is refused a $0.45 call her client cannot
//! ask her about, while Bob, who left it blank, runs the same call under the server's $1.00, and
//! the server's $1.00 still holds for him. The official Python client's elicitation with a
//! person's threshold is tests/python/test_http_oauth.py.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::{
    common::{fast_config, http::HttpServer, simulator, JournalAt},
    oauth::{error_text, tool, Flow},
};

const ALICE: &str = "rc-confirm-alice-key-3e9a";
const BOB: &str = "rc-confirm-bob-key-81c0";

/// What each grant keeps as its person's threshold, read raw from the database, sorted (blank
/// first): grants made in the same second have no order of their own.
fn stored_thresholds(journal: &JournalAt) -> Vec<Option<f64>> {
    let mut stored: Vec<Option<f64>> = match journal {
        JournalAt::Dir(dir) => {
            let db = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
            let mut select = db.prepare("SELECT confirm_above_usd FROM oauth_grants").unwrap();
            let rows = select.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        }
        JournalAt::Database(cluster) => {
            let url = cluster.socket_url();
            // The postgres crate blocks on a runtime of its own: off the test's.
            std::thread::spawn(move || {
                let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                db.query("SELECT confirm_above_usd FROM runcomfy_oauth_grants", &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            })
            .join()
            .unwrap()
        }
    };
    stored.sort_by(|a, b| a.partial_cmp(b).expect("no NaN is stored"));
    stored
}

async fn a_persons_threshold_is_checked_kept_and_applied_to_them_alone(journal: JournalAt) {
    let sim = simulator(fast_config()).await;
    let journal_env = match &journal {
        JournalAt::Dir(dir) => ("RUNCOMFY_STATE_DIR", dir.path().to_str().unwrap().to_owned()),
        JournalAt::Database(cluster) => ("RUNCOMFY_JOURNAL_URL", cluster.tcp_url()),
    };
    // Stateless, and calls that declare no elicitation: a call above the threshold that applies
    // is refused (the Python test answers the question instead).
    let server = HttpServer::start(
        &sim.base_url(),
        &["--oauth", "--stateless"],
        &[
            ("RUNCOMFY_NO_JOURNAL", "false"),
            (journal_env.0, journal_env.1.as_str()),
            ("RUNCOMFY_CONFIRM_ABOVE_USD", "1.00"),
        ],
    )
    .await;

    // The field is on the page, labelled, blank by default, and says the operator's ceiling.
    let flow = Flow::register(&server).await;
    let page = flow
        .authorize("http://127.0.0.1:9/callback", &server.url("/mcp"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<label for="confirm_above">Ask me before spending more than"#)
            && page.contains(r#"<input id="confirm_above" name="confirm_above_usd" inputmode="decimal" value="">"#)
            && page.contains("at most $1.00 on this server; blank: that"),
        "{page}"
    );

    // Refused with the page again, saying why, keeping what was typed; nothing is granted.
    for (typed, why) in [
        ("-1", "must be an amount of US dollars, 0 or more"),
        ("NaN", "must be an amount of US dollars, 0 or more"),
        ("a lot", "must be an amount of US dollars, 0 or more"),
        ("1.50", "can be at most $1.00 on this server"),
    ] {
        let answer = flow.allow(ALICE, &[("confirm_above_usd", typed)]).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{typed}");
        assert!(answer.headers().get(header::LOCATION).is_none(), "{typed}");
        let csp = answer.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(answer.headers()[header::REFERRER_POLICY], "same-origin");
        let page = answer.text().await.unwrap();
        assert!(
            page.contains(r#"role="alert""#) && page.contains(why),
            "{typed}: {page}"
        );
        assert!(
            page.contains(&format!(
                r#"name="confirm_above_usd" inputmode="decimal" value="{typed}""#
            )),
            "{typed}: shown again"
        );
    }
    assert_eq!(
        stored_thresholds(&journal),
        Vec::<Option<f64>>::new(),
        "nothing granted"
    );

    // Alice asks to be asked above $0.10; Bob leaves it blank: the server's.
    let alice = flow.tokens_with(ALICE, &[("confirm_above_usd", "$0.10")]).await;
    let bob = Flow::register(&server)
        .await
        .tokens_with(BOB, &[("confirm_above_usd", " ")])
        .await;
    assert_eq!(stored_thresholds(&journal), [None, Some(0.10)]);
    let alice = alice["access_token"].as_str().unwrap();
    let bob = bob["access_token"].as_str().unwrap();

    // 15 images at most at $0.03: up to $0.45, above Alice's $0.10 and within the server's $1.00.
    let fox = json!({ "prompt": "a red fox in snow", "size": "1024x1024" });
    let refused = error_text(&tool(&server, alice, 1, "generate_image", fox.clone()).await);
    assert!(
        refused.starts_with("Not submitted: this may cost up to $0.45, above $0.10")
            && refused.contains("the person's own confirm threshold")
            && refused.contains("sign-in page"),
        "{refused}"
    );
    assert_eq!(sim.stats().submissions, 0, "nothing sent for Alice");
    let ran: Value = tool(&server, bob, 2, "generate_image", fox.clone()).await;
    assert_eq!(ran["isError"], json!(false), "{ran}");
    assert_eq!(sim.stats().submissions, 1, "Bob's job, unasked");

    // Alice's call within her threshold runs unasked; the server's $1.00 still holds for Bob.
    let single = json!({ "prompt": "a red fox in snow", "size": "1024x1024", "force_single": true });
    let ran = tool(&server, alice, 3, "generate_image", single).await;
    assert_eq!(ran["isError"], json!(false), "{ran}");
    assert_eq!(sim.stats().submissions, 2);
    let three = json!({ "prompt": "a red fox in snow", "size": "1024x1024", "count": 3 });
    let refused = error_text(&tool(&server, bob, 4, "generate_image", three).await);
    assert!(
        refused.starts_with("Not submitted: this may cost up to $1.35, above $1.00")
            && refused.contains("--confirm-above-usd"),
        "{refused}"
    );
    assert_eq!(sim.stats().submissions, 2, "nothing sent for Bob's three");
    assert_eq!(server.stop().await.code(), Some(0));
}

#[tokio::test]
async fn a_persons_confirm_threshold_is_checked_kept_and_applied_to_them_alone_with_sqlite() {
    a_persons_threshold_is_checked_kept_and_applied_to_them_alone(JournalAt::dir()).await;
}

#[tokio::test]
async fn a_persons_confirm_threshold_is_checked_kept_and_applied_to_them_alone_with_postgresql() {
    let Some(journal) = JournalAt::database("oauth_confirm_threshold") else {
        return;
    };
    a_persons_threshold_is_checked_kept_and_applied_to_them_alone(journal).await;
}
