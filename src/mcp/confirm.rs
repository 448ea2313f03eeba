//! A person approves a big spend (`--confirm-above-usd`): when a call that starts paid jobs may
//! cost more than the threshold, the server asks the person, not the model, through MCP
//! elicitation, and submits only on their accept. Decline, cancel, no answer or a client that
//! cannot ask all submit nothing and say so.
//!
//! How the client is asked follows the protocol version it speaks: up to 2025-11-25 a
//! `elicitation/create` request to the client while the call waits; from 2026-07-28 (which forbids
//! requests to the client) an input-required result that the client answers by calling again with
//! the person's answer and the `requestState` it was given. That state is a single-use handle to
//! an approval kept here, bound to the caller and to the call's exact arguments: an answer for
//! another call, or given twice, approves nothing. No tool argument touches any of this, so the
//! model cannot answer for the person.
//!
//! Kept in memory: with `--stateless` replicas behind a balancer a retry that reaches another
//! process is simply asked again.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    handler::server::{common::FromContextPart, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationSchema, InputRequest, InputRequiredResult, InputResponses, ProtocolVersion,
    },
    service::RequestContext,
    ErrorData, Peer, RoleServer,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{answer::ToolError, RunComfyServer};
use crate::{
    jobs::{Caller, CostEstimate, Prepared},
    money::usd,
    text::ellipsis,
};

/// The server's setting, as the refusals name it.
const SETTING: &str = "--confirm-above-usd (RUNCOMFY_CONFIRM_ABOVE_USD)";
/// A person's own threshold, as the refusals name it.
const OWN_SETTING: &str =
    "the person's own confirm threshold (\"Ask me before spending more than\", chosen on this server's sign-in page)";
/// The key of the one input request (2026-07-28).
const REQUEST_KEY: &str = "confirm_spend";
/// How long a person has to answer, on either protocol.
const ANSWER_WITHIN: Duration = Duration::from_secs(10 * 60);
/// Past this many open approvals, the expired ones go (and, if none has, the oldest).
const MAX_OPEN: usize = 1024;

/// The same caller making the same call: SHA-256 of their owner, the tool and its arguments.
type Fingerprint = [u8; 32];

/// What the call carries for asking its person, put in the request's extensions by `call_tool`
/// (only when a threshold applies: none is made otherwise) and taken by the paid tools as a
/// parameter.
#[derive(Debug, Clone, Default)]
pub(super) struct Consent(Option<Asking>);

#[derive(Debug, Clone)]
struct Asking {
    fingerprint: Fingerprint,
    channel: Channel,
    /// The client's answers to an earlier input-required result, and the state it was given.
    responses: Option<InputResponses>,
    state: Option<String>,
    cancel: CancellationToken,
}

#[derive(Debug, Clone)]
enum Channel {
    /// Up to 2025-11-25: an `elicitation/create` request to this peer.
    Request(Peer<RoleServer>),
    /// 2026-07-28 on: an input-required result.
    InputRequired,
    /// The client declared no (form) elicitation.
    Unable,
}

impl Consent {
    /// Whether this call carries the means to ask (made only where a threshold applies).
    pub(super) fn is_asked(&self) -> bool {
        self.0.is_some()
    }

    pub(super) fn of(request: &CallToolRequestParams, context: &RequestContext<RoleServer>, caller: &Caller) -> Self {
        let form = context
            .client_capabilities()
            .and_then(|caps| caps.elicitation)
            // A bare `elicitation: {}` means form mode (the spec's reading for older clients).
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        let modern = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        let channel = match (form, modern) {
            (false, _) => Channel::Unable,
            (true, true) => Channel::InputRequired,
            (true, false) => Channel::Request(context.peer.clone()),
        };
        let arguments = serde_json::to_vec(&request.arguments).unwrap_or_default();
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [
            caller.owner().to_string().as_bytes(),
            request.name.as_bytes(),
            &arguments,
        ] {
            digest.update(&(part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        let mut fingerprint = [0; 32];
        fingerprint.copy_from_slice(digest.finish().as_ref());
        Self(Some(Asking {
            fingerprint,
            channel,
            responses: request.input_responses.clone(),
            state: request.request_state.clone(),
            cancel: context.ct.clone(),
        }))
    }
}

/// A paid tool's `consent: Consent` parameter (empty when no threshold applies).
impl FromContextPart<ToolCallContext<'_, RunComfyServer>> for Consent {
    fn from_context_part(context: &mut ToolCallContext<'_, RunComfyServer>) -> Result<Self, ErrorData> {
        Ok(context
            .request_context
            .extensions
            .remove::<Consent>()
            .unwrap_or_default())
    }
}

/// Approvals asked for on 2026-07-28 and not answered yet, by the handle given as `requestState`.
/// Shared by every session: the answer comes in a new request.
#[derive(Debug, Clone, Default)]
pub(super) struct OpenApprovals(Arc<Mutex<HashMap<String, (Fingerprint, Instant)>>>);

impl OpenApprovals {
    fn open(&self, fingerprint: Fingerprint) -> String {
        let handle = format!("{:032x}", rand::random::<u128>());
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= MAX_OPEN {
            open.retain(|_, (_, at)| at.elapsed() < ANSWER_WITHIN);
            if let Some(oldest) = open.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                open.remove(&oldest);
            }
        }
        open.insert(handle.clone(), (fingerprint, Instant::now()));
        handle
    }

    /// Whether `handle` was opened for this fingerprint and is still open; it is closed either way.
    fn close(&self, handle: &str, fingerprint: &Fingerprint) -> bool {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(handle)
            .is_some_and(|(opened_for, at)| &opened_for == fingerprint && at.elapsed() < ANSWER_WITHIN)
    }
}

/// The amount past which a call is asked about, and whose setting it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Threshold {
    usd: f64,
    /// The person's own (from their OAuth grant), not the server's.
    own: bool,
}

impl Threshold {
    /// The setting the refusals name.
    fn setting(self) -> &'static str {
        if self.own {
            OWN_SETTING
        } else {
            SETTING
        }
    }

    /// How to let a bigger call through without being asked.
    fn how_to_raise(self) -> String {
        if self.own {
            format!("or the person can connect this app again and choose a higher amount on the sign-in page (up to the server's {SETTING}, where it is set)")
        } else {
            format!("or have whoever runs this server raise {SETTING}")
        }
    }
}

/// What a call that may cost too much amounts to, in the person's words.
struct Ask {
    message: String,
    /// The most it may cost, for the refusals; `None`: not known.
    top: Option<f64>,
}

impl RunComfyServer {
    /// The threshold for this caller: the lower of the server's `--confirm-above-usd` and the
    /// person's own (chosen on the OAuth consent page, kept with their grant). A person can ask
    /// to be asked sooner, never later: an operator who set a threshold counts on every big
    /// spend on their server being confirmed by a person, so theirs is a ceiling (the consent
    /// page refuses more, and a threshold the operator lowered since applies at once). Without
    /// a server setting, a person's own applies alone.
    pub(super) fn confirm_threshold(&self, caller: &Caller) -> Option<Threshold> {
        lower(caller.confirm_above_usd(), self.confirm_above_usd)
    }

    /// Whether `count` jobs of `prepared`, estimated at `estimate` (made for one job or for all
    /// of them), may be submitted: `Ok(None)` to go on; `Ok(Some(answer))` to answer the call with instead (the
    /// question, on 2026-07-28); `Err` when the person declined or could not be asked (nothing
    /// may be submitted).
    pub(super) async fn confirm(
        &self,
        caller: &Caller,
        consent: &Consent,
        prepared: &Prepared,
        count: u32,
        estimate: &Result<CostEstimate, String>,
    ) -> Result<Option<CallToolResponse>, ToolError> {
        let Some(threshold) = self.confirm_threshold(caller) else {
            return Ok(None);
        };
        let Some(ask) = ask(threshold.usd, prepared, count, estimate) else {
            return Ok(None);
        };
        // Made by call_tool whenever a threshold applies; without it, nobody can be asked.
        let Some(consent) = &consent.0 else {
            return Err(unable(&ask, threshold));
        };
        let action = match &consent.channel {
            Channel::Unable => return Err(unable(&ask, threshold)),
            Channel::InputRequired => {
                let answered = consent
                    .state
                    .as_deref()
                    .filter(|handle| self.approvals.close(handle, &consent.fingerprint))
                    .and_then(|_| consent.responses.as_ref()?.get(REQUEST_KEY))
                    .and_then(|answer| serde_json::from_value::<ElicitResult>(answer.clone()).ok());
                match answered {
                    Some(answer) => answer.action,
                    None => {
                        let handle = self.approvals.open(consent.fingerprint);
                        let question = InputRequest::Elicitation(ElicitRequest::new(form(&ask.message)));
                        let requests = BTreeMap::from([(REQUEST_KEY.to_owned(), question)]);
                        return Ok(Some(InputRequiredResult::new(Some(requests), Some(handle)).into()));
                    }
                }
            }
            Channel::Request(peer) => {
                let asked = peer.create_elicitation_with_timeout(form(&ask.message), Some(ANSWER_WITHIN));
                tokio::select! {
                    answer = asked => match answer {
                        Ok(answer) => answer.action,
                        Err(e) => return Err(ToolError::new(format!(
                            "Not submitted: this may cost {}, above {} ({}), so the person must confirm it, and asking them failed: {e}. Nothing was sent to RunComfy and nothing was charged.",
                            top_text(&ask), usd(threshold.usd), threshold.setting()
                        ))),
                    },
                    _ = consent.cancel.cancelled() => return Err(ToolError::new(
                        "Not submitted: the call was cancelled while the person was asked to confirm its cost. Nothing was sent to RunComfy.",
                    )),
                }
            }
        };
        match action {
            ElicitationAction::Accept => {
                tracing::info!(top_usd = ?ask.top, "the person approved a spend above the threshold");
                Ok(None)
            }
            ElicitationAction::Decline => Err(ToolError::new(format!(
                "Not submitted: the person declined to start this (it may cost {}). Nothing was sent to RunComfy and nothing was charged. Do not call again unless they ask for it; a smaller request (count 1, force_single: true) costs less.",
                top_text(&ask)
            ))),
            // Cancel, and any action a later protocol adds: no approval.
            _ => Err(ToolError::new(format!(
                "Not submitted: the person dismissed the question whether to start this (it may cost {}) without accepting. Nothing was sent to RunComfy and nothing was charged.",
                top_text(&ask)
            ))),
        }
    }
}

/// The lower of a person's `own` threshold and the `server`'s, and whose it is (the server's
/// when they are equal: its refusal names the setting an operator can change).
fn lower(own: Option<f64>, server: Option<f64>) -> Option<Threshold> {
    let server = server.map(|usd| Threshold { usd, own: false });
    let own = own.map(|usd| Threshold { usd, own: true });
    match (own, server) {
        (Some(own), Some(server)) if server.usd <= own.usd => Some(server),
        (Some(own), _) => Some(own),
        (None, server) => server,
    }
}

/// The question for `count` jobs of `prepared`, or `None` when their top is within `threshold`.
/// A job whose cost is not known is asked about too: it may be the big one.
fn ask(threshold: f64, prepared: &Prepared, count: u32, estimate: &Result<CostEstimate, String>) -> Option<Ask> {
    let what = {
        let jobs = if count == 1 {
            "1 job".to_owned()
        } else {
            format!("{count} jobs")
        };
        let prompt = match prepared.prompt.trim() {
            "" => String::new(),
            prompt => format!(", \"{}\"", ellipsis(prompt, 120)),
        };
        format!("{jobs} on {}{prompt}", prepared.model)
    };
    match estimate {
        Ok(estimate) => {
            // Of one job, times the call's: whether the estimate was made for one or for all.
            let top = estimate.max_usd / f64::from(estimate.jobs.max(1)) * f64::from(count);
            if top <= threshold + 1e-9 {
                return None;
            }
            let units = estimate.units_per_job[1].saturating_mul(count);
            let unit = if units == 1 { estimate.unit.clone() } else { format!("{}s", estimate.unit) };
            Some(Ask {
                message: format!(
                    "This will cost up to {} ({units} {unit} at {} each): {what}. Start it?",
                    usd(top),
                    usd(estimate.per_unit_usd)
                ),
                top: Some(top),
            })
        }
        Err(reason) => Some(Ask {
            message: format!(
                "The cost of this is not known ({reason}): {what}. This server asks before any spend above {} or of unknown cost. Start it?",
                usd(threshold)
            ),
            top: None,
        }),
    }
}

fn top_text(ask: &Ask) -> String {
    ask.top
        .map_or("an unknown amount".to_owned(), |top| format!("up to {}", usd(top)))
}

/// A form with nothing to fill in: the host shows the message with accept and decline.
fn form(message: &str) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_owned(),
        requested_schema: ElicitationSchema::new(BTreeMap::new()),
    }
}

/// The refusal for a client that cannot ask its person: what it would cost, and how to go ahead.
fn unable(ask: &Ask, threshold: Threshold) -> ToolError {
    ToolError::new(format!(
        "Not submitted: this may cost {}, above {}, the amount past which this server asks the person to confirm a spend ({}), and this client cannot ask them (it does not support MCP elicitation). Nothing was sent to RunComfy and nothing was charged. To go ahead, ask for less so that the estimate stays within {}: fewer jobs (count), force_single: true for one image per job, a smaller batch; {}.",
        top_text(ask),
        usd(threshold.usd),
        threshold.setting(),
        usd(threshold.usd),
        threshold.how_to_raise(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::price::Basis;

    fn prepared() -> Prepared {
        Prepared {
            model: "bytedance/dreamina-4-0/text-to-image".to_owned(),
            wire: serde_json::json!({}),
            params: serde_json::json!({}),
            prompt: "a red fox in snow".to_owned(),
            size: String::new(),
            basis: Basis::ImageSet { most: 15 },
            recipe: None,
        }
    }

    fn estimate(jobs: u32) -> Result<CostEstimate, String> {
        Ok(CostEstimate {
            min_usd: 0.03 * f64::from(jobs),
            max_usd: 0.45 * f64::from(jobs),
            per_unit_usd: 0.03,
            unit: "image".to_owned(),
            units_per_job: [1, 15],
            jobs,
            pricing_note: None,
            balance: None,
        })
    }

    #[test]
    fn the_question_says_the_top_and_how_it_is_reached() {
        assert!(
            ask(0.45, &prepared(), 1, &estimate(1)).is_none(),
            "at the threshold: no question"
        );
        let asked = ask(1.0, &prepared(), 4, &estimate(4)).expect("$1.80 is above $1");
        assert_eq!(
            asked.message,
            "This will cost up to $1.80 (60 images at $0.03 each): 4 jobs on bytedance/dreamina-4-0/text-to-image, \"a red fox in snow\". Start it?"
        );
        let unknown = ask(1.0, &prepared(), 1, &Err("no price listed".to_owned())).expect("asked");
        assert!(unknown
            .message
            .starts_with("The cost of this is not known (no price listed)"));
        let refusal = unable(&asked, Threshold { usd: 1.0, own: false });
        assert!(refusal.text().contains("--confirm-above-usd"), "{}", refusal.text());
        assert!(refusal.text().contains("Nothing was sent"), "{}", refusal.text());
        let own = unable(&asked, Threshold { usd: 0.5, own: true }).text().to_owned();
        assert!(own.contains("above $0.50") && own.contains("sign-in page"), "{own}");
    }

    #[test]
    fn a_persons_threshold_can_lower_the_servers_never_raise_it() {
        let own = |usd| Some(Threshold { usd, own: true });
        let server = |usd| Some(Threshold { usd, own: false });
        assert_eq!(lower(None, None), None);
        assert_eq!(
            lower(Some(0.5), None),
            own(0.5),
            "a person may ask where the server does not"
        );
        assert_eq!(lower(None, Some(2.0)), server(2.0));
        assert_eq!(lower(Some(0.5), Some(2.0)), own(0.5));
        assert_eq!(lower(Some(5.0), Some(2.0)), server(2.0), "the operator's is a ceiling");
        assert_eq!(lower(Some(2.0), Some(2.0)), server(2.0));
    }

    #[test]
    fn an_approval_is_for_one_call_and_used_once() {
        let approvals = OpenApprovals::default();
        let handle = approvals.open([1; 32]);
        assert!(
            !approvals.close(&handle, &[2; 32]),
            "another call's answer approves nothing"
        );
        let handle = approvals.open([1; 32]);
        assert!(approvals.close(&handle, &[1; 32]));
        assert!(!approvals.close(&handle, &[1; 32]), "used once");
        assert!(!approvals.close("made-up", &[1; 32]));
    }
}
