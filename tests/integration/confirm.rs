//! `--confirm-above-usd` on the tasks path: a tasks-capable client is asked before a task that
//! may cost more is made (an accept makes the task and its job; a decline makes neither), and one
//! that cannot ask is refused naming the setting, with nothing submitted. The Python suite drives
//! the same through the official client's elicitation_callback (tests/python/test_stdio_confirm.py).

use std::sync::{Arc, Mutex};

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
        ElicitationAction, ElicitationCapability, Implementation,
    },
    service::RequestContext,
    ClientHandler, ErrorData, RoleClient,
};
use serde_json::json;

use crate::common::*;

/// A tasks-capable client whose person answers every question with `answer` (`None`: a client
/// that declares no elicitation).
#[derive(Clone)]
struct Person {
    answer: Option<ElicitationAction>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::builder().enable_tasks().build();
        if self.answer.is_some() {
            capabilities.elicitation = Some(ElicitationCapability::default());
        }
        ClientConfig::new(capabilities, Implementation::new("confirm-test", "0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        Ok(ElicitResult::new(
            self.answer.clone().unwrap_or(ElicitationAction::Decline),
        ))
    }
}

async fn task_call(answer: Option<ElicitationAction>) -> (CallToolResponse, Vec<String>, u64) {
    let sim = simulator(fast_config()).await;
    let person = Person {
        answer,
        asked: Arc::default(),
    };
    let client = connect_with(
        person.clone(),
        &sim.base_url(),
        &[("RUNCOMFY_CONFIRM_ABOVE_USD", "0.10")],
    )
    .await;
    let call = CallToolRequestParams::new("generate_image_and_wait")
        .with_arguments(args(json!({"prompt": "a red fox in snow", "size": "1024x1024"})));
    let response = client.call_tool_once(call).await.expect("tools/call");
    if matches!(response, CallToolResponse::Task(_)) {
        // A task submits its job in the background.
        eventually(
            async || (sim.stats().submissions > 0).then_some(()),
            "the task to submit its job",
        )
        .await;
    }
    let submitted = sim.stats().submissions;
    client.cancel().await.unwrap();
    let asked = person.asked.lock().unwrap().clone();
    (response, asked, submitted)
}

#[tokio::test]
async fn a_task_that_may_cost_more_is_made_only_on_the_persons_accept() {
    let (accepted, asked, submitted) = task_call(Some(ElicitationAction::Accept)).await;
    assert!(matches!(accepted, CallToolResponse::Task(_)), "{accepted:?}");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].starts_with("This will cost up to $0.45 (15 images at $0.03 each)"),
        "{asked:?}"
    );
    assert_eq!(submitted, 1);

    let (declined, asked, submitted) = task_call(Some(ElicitationAction::Decline)).await;
    let CallToolResponse::Complete(result) = declined else {
        panic!("a declined call makes no task: {declined:?}")
    };
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("the person declined"), "{}", text(&result));
    assert_eq!((asked.len(), submitted), (1, 0));
}

#[tokio::test]
async fn a_tasks_client_that_cannot_ask_is_refused_naming_the_setting() {
    let (refused, asked, submitted) = task_call(None).await;
    let CallToolResponse::Complete(result) = refused else {
        panic!("no task without an approval: {refused:?}")
    };
    let text = text(&result);
    assert!(
        result.is_error == Some(true) && text.contains("--confirm-above-usd"),
        "{text}"
    );
    assert!(asked.is_empty() && submitted == 0, "{asked:?} {submitted}");
}
