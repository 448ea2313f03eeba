//! What the simulator charges: a price per image, published in the model's catalogue entry
//! (`GET /v1/models/{model_id}`, the fields RunComfy's clients read), a job's cost in its result
//! when asked with `include_cost=true`, and an optional balance that a submit is charged from,
//! answered with HTTP 402 and error_code 400002 once it cannot pay. The balance is read at
//! `GET /prod/v2/balance`, in the shape RunComfy's CLI and MCP server read.
//!
//! When RunComfy takes the money is not published: at submit (refunded on a cancel), or when the
//! job completes. `bill_at_completion` switches to the second: a submit only checks that the
//! balance covers the job, and the job is charged once it is seen completed, so that a job
//! cancelled in the queue is never charged at all.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::Response;

use serde::Serialize;

use super::state::Phase;
use super::{wire, Shared};

/// Jobs billed at completion that have not been charged yet: request id → cost.
#[derive(Debug, Default)]
pub(crate) struct Owed(Mutex<HashMap<String, f64>>);

impl Owed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, f64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `Err` with the balance left when it cannot cover `usd` (nothing is taken).
pub(crate) fn can_pay(sim: &Shared, usd: f64) -> Result<(), f64> {
    sim.with_config(|config| match config.balance_usd {
        Some(balance) if balance + 1e-9 < usd => Err(balance),
        _ => Ok(()),
    })
}

/// Records that job `id` is to be charged `usd` when it completes.
pub(crate) fn owe(sim: &Shared, id: &str, usd: f64) {
    sim.owed.lock().insert(id.to_owned(), usd);
}

/// Forgets what job `id` owes (it was cancelled before completing); true if it owed anything,
/// that is, if it was never charged and so has nothing to refund.
pub(crate) fn forgive(sim: &Shared, id: &str) -> bool {
    sim.owed.lock().remove(id).is_some()
}

/// Charges every owed job that has completed by now. The balance may not cover it any more (other
/// jobs completed first): it then ends at 0, as an account that went into debt would.
pub(crate) fn settle(sim: &Shared) {
    let mut owed = sim.owed.lock();
    if owed.is_empty() {
        return;
    }
    let done: Vec<(String, f64)> = owed
        .iter()
        .filter(|(id, _)| {
            sim.jobs
                .get(id)
                .is_some_and(|job| matches!(job.phase(), Phase::Completed { .. }))
        })
        .map(|(id, usd)| (id.clone(), *usd))
        .collect();
    for (id, usd) in done {
        owed.remove(&id);
        sim.with_config(|config| {
            if let Some(balance) = config.balance_usd.as_mut() {
                *balance = (*balance - usd).max(0.0);
            }
        });
    }
}

/// A made-up price, of the order of image models on RunComfy: nothing here is billed.
pub const DEFAULT_PRICE_USD: f64 = 0.03;

/// The balance reported when none is set (jobs are then never refused for money): a made-up figure.
pub const NOTIONAL_BALANCE_USD: f64 = 100.0;

/// `GET /prod/v2/balance`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct BalanceResponse {
    balance_usd: f64,
    balance_microdollars: i64,
    currency: &'static str,
}

/// The balance left, as the account API answers it: it goes down as jobs are charged.
pub(crate) fn balance(sim: &Shared) -> BalanceResponse {
    // Jobs billed at completion are charged when seen completed: this is a look too.
    settle(sim);
    let usd = sim
        .with_config(|config| config.balance_usd)
        .unwrap_or(NOTIONAL_BALANCE_USD)
        .max(0.0);
    let balance_microdollars = (usd * 1_000_000.0).round() as i64;
    BalanceResponse {
        balance_usd: balance_microdollars as f64 / 1_000_000.0,
        balance_microdollars,
        currency: "USD",
    }
}

/// Takes `usd` from the balance, if there is one; `Err` with the balance left when it cannot pay.
pub(crate) fn charge(sim: &Shared, usd: f64) -> Result<(), f64> {
    sim.with_config(|config| match config.balance_usd.as_mut() {
        None => Ok(()),
        Some(balance) if *balance + 1e-9 >= usd => {
            *balance = (*balance - usd).max(0.0);
            Ok(())
        }
        Some(balance) => Err(*balance),
    })
}

/// RunComfy's answer to a submit the balance cannot pay for.
pub(crate) fn payment_required(balance: f64, usd: f64) -> Response {
    wire::error(
        StatusCode::PAYMENT_REQUIRED,
        400002,
        &format!("Insufficient balance: ${balance:.2} left, this job costs ${usd:.2}"),
    )
}

/// Gives back what a cancelled job was charged.
pub(crate) fn refund(sim: &Shared, usd: f64) {
    sim.with_config(|config| {
        if let Some(balance) = config.balance_usd.as_mut() {
            *balance += usd;
        }
    });
}
