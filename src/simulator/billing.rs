//! What the simulator charges: a price per image, published in the model's catalogue entry
//! (`GET /v1/models/{model_id}`, the fields RunComfy's clients read), a job's cost in its result
//! when asked with `include_cost=true`, and an optional balance that a submit is charged from,
//! answered with HTTP 402 and error_code 400002 once it cannot pay.

use axum::http::StatusCode;
use axum::response::Response;

use super::{wire, Shared};

/// A made-up price, of the order of image models on RunComfy: nothing here is billed.
pub const DEFAULT_PRICE_USD: f64 = 0.03;

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
