//! What a tool that starts jobs and answers at once says of them (generate_image,
//! generate_variations): their ids, what failed, what they are expected to cost and what to call
//! next, around what the tool itself says of the jobs ([`About`]). One type, one constructor and
//! one renderer for both; each keeps the wording of its own published output schema.

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Serialize;

use super::super::answer::{success, ToolError};
use crate::{
    jobs::{CostEstimate, SubmitError},
    runcomfy::{JobStatus, RequestId},
};

/// What a tool says of the jobs it started, beside their ids and cost: its fields, and its
/// wording of the shared ones.
pub(crate) trait About: Serialize + JsonSchema {
    /// The description of `request_id` in the tool's output schema.
    const REQUEST_ID: &'static str;
    /// The description of `request_ids`.
    const REQUEST_IDS: &'static str;
    /// The description of `estimated_cost_usd`.
    const ESTIMATED_COST: &'static str;

    /// What was started, for the answer's first line ("4 Dreamina 4.0 edit jobs (…)"), given
    /// how many jobs it is.
    fn what(&self, jobs: usize) -> String;
}

/// The answer of a call that started jobs: the handles to everything that follows.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(bound = "D: About")]
pub struct Started<D> {
    #[schemars(with = "String", description = D::REQUEST_ID)]
    pub request_id: RequestId,
    #[schemars(with = "Vec<String>", description = D::REQUEST_IDS)]
    pub request_ids: Vec<RequestId>,
    /// Always `in_queue` right after submitting.
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// What the tool says of the jobs (its fields stand here, in its schema too).
    #[serde(flatten)]
    pub about: D,
    /// Submits of this call that failed, when others succeeded (when all fail the call is an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(description = D::ESTIMATED_COST)]
    pub estimated_cost_usd: Option<CostEstimate>,
    /// Why there is no estimate, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_note: Option<String>,
    /// What to call next.
    pub next_step: String,
}

impl<D: About> Started<D> {
    /// The answer for a call's submits, in order. `Err` when none got a job.
    /// `estimate`: of one job.
    pub(super) fn new(
        outcomes: Vec<Result<RequestId, SubmitError>>,
        estimate: Result<CostEstimate, String>,
        about: D,
    ) -> Result<Self, ToolError> {
        let count = outcomes.len();
        let mut ids = Vec::new();
        let mut failures = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(id) => ids.push(id),
                Err(e) => failures.push(ToolError::submit(&e)),
            }
        }
        if ids.is_empty() {
            return Err(match failures.len() {
                1 => failures.remove(0),
                n => ToolError::new(format!(
                    "All {n} submits failed.\n{}",
                    failures.iter().map(ToolError::text).collect::<Vec<_>>().join("\n")
                )),
            });
        }
        let list = ids.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", ");
        let mut next_step = if ids.len() == 1 {
            format!(
                "Call check_status with request_id {list} every few seconds until status is succeeded, then call get_result for the image URLs. cancel_request can stop it while it is still queued."
            )
        } else {
            format!(
                "Call check_status with each request_id ({list}) every few seconds until it is succeeded, then get_result for its image URLs. cancel_request can stop any of them while it is still queued."
            )
        };
        if !failures.is_empty() {
            next_step.push_str(&format!(
                " {} of the {count} submits failed (see failures); do not submit them again without checking that no job was made.",
                failures.len()
            ));
        }
        // The estimate of the jobs that were made, not of those refused.
        let jobs = ids.len() as u32;
        let (estimated_cost_usd, cost_note) = match estimate {
            Ok(one) => (Some(one.for_jobs(jobs)), None),
            Err(reason) => (None, Some(format!("No cost estimate: {reason}."))),
        };
        Ok(Self {
            request_id: ids[0].clone(),
            request_ids: ids,
            status: JobStatus::InQueue,
            about,
            failures: failures.iter().map(|f| f.text().replace('\n', " ")).collect(),
            estimated_cost_usd,
            cost_note,
            next_step,
        })
    }

    pub(super) fn render(&self) -> CallToolResult {
        let what = self.about.what(self.request_ids.len());
        let mut text = first_line(&what, self.estimated_cost_usd.as_ref(), &self.request_ids, &self.status);
        for failure in &self.failures {
            text.push_str(&format!("\nFailed submit: {failure}"));
        }
        if let Some(estimate) = &self.estimated_cost_usd {
            text.push_str(&format!("\n{}; get_result reports the actual cost.", estimate.text()));
        }
        if let Some(note) = &self.cost_note {
            text.push_str(&format!("\n{note}"));
        }
        text.push_str(&format!("\nNext: {}", self.next_step));
        success(self, text)
    }
}

/// The first line of a submit's answer: what was started and its estimated range, before the
/// jobs' ids (a person or model reading only the first line knows what it costs).
fn first_line(what: &str, estimate: Option<&CostEstimate>, ids: &[RequestId], status: &JobStatus) -> String {
    let cost = match estimate {
        Some(estimate) if ids.len() > 1 => format!("estimated {} in all", estimate.range_text()),
        Some(estimate) => format!("estimated {}", estimate.range_text()),
        None => "cost not estimated".to_owned(),
    };
    let list: Vec<String> = ids.iter().map(RequestId::to_string).collect();
    let jobs = if ids.len() == 1 { "job" } else { "jobs" };
    format!(
        "Submitted {what}, {cost}: {jobs} {}. Status: {status}.",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, JsonSchema)]
    struct Two;

    impl About for Two {
        const REQUEST_ID: &'static str = "first";
        const REQUEST_IDS: &'static str = "all";
        const ESTIMATED_COST: &'static str = "cost";

        fn what(&self, jobs: usize) -> String {
            format!("{jobs} test jobs")
        }
    }

    fn id(n: u32) -> RequestId {
        RequestId::parse(&format!("00000000-0000-4000-8000-00000000000{n}")).unwrap()
    }

    fn one_job() -> CostEstimate {
        CostEstimate {
            min_usd: 0.03,
            max_usd: 0.09,
            per_unit_usd: 0.03,
            unit: "image".into(),
            units_per_job: [1, 3],
            jobs: 1,
            pricing_note: None,
            balance: None,
        }
    }

    #[test]
    fn the_jobs_made_are_counted_priced_and_the_failed_submits_named() {
        let refused = || Err(SubmitError::Limit("over the hourly limit".into()));
        let started = Started::new(vec![Ok(id(1)), refused(), Ok(id(2))], Ok(one_job()), Two).unwrap();
        assert_eq!(started.request_id, id(1));
        assert_eq!(started.request_ids, [id(1), id(2)]);
        assert_eq!(started.failures.len(), 1);
        assert!(
            started.next_step.contains("1 of the 3 submits failed"),
            "{}",
            started.next_step
        );
        let estimate = started.estimated_cost_usd.as_ref().unwrap();
        assert_eq!(
            (estimate.jobs, estimate.min_usd, estimate.max_usd),
            (2, 0.06, 0.18),
            "of the 2 jobs made"
        );
        let text = started.render().content[0].as_text().unwrap().text.clone();
        assert!(text.starts_with("Submitted 2 test jobs, estimated $0.06"), "{text}");

        let none = Started::new(vec![refused(), refused()], Err("no price".into()), Two).unwrap_err();
        assert!(none.text().starts_with("All 2 submits failed."), "{}", none.text());
    }

    #[test]
    fn each_tool_words_the_shared_fields_its_own_way() {
        let schema = schemars::schema_for!(Started<Two>).to_value();
        let description = |field: &str| schema["properties"][field]["description"].clone();
        assert_eq!(
            (
                description("request_id"),
                description("request_ids"),
                description("estimated_cost_usd")
            ),
            ("first".into(), "all".into(), "cost".into())
        );
    }
}
