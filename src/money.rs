//! Amounts of US dollars as people and models read them. Prices, estimates and spend totals are
//! floats (RunComfy sends them so), and their products and sums drift in the last digits
//! (0.03 × 15 = 0.44999999999999996); a total that drifts just below zero prints as "$-0.00".
//! Every amount an answer carries is rounded here, to a millionth of a dollar, and every amount a
//! text shows is printed here, to the cent.

/// `amount` to a millionth of a dollar (a micro-dollar, RunComfy's own finest unit), never
/// negative zero: for structured fields, so that `max_usd` reads 0.45.
pub fn round_usd(amount: f64) -> f64 {
    if !amount.is_finite() {
        return amount;
    }
    // Adding 0.0 turns a negative zero into a positive one.
    (amount * 1e6).round() / 1e6 + 0.0
}

/// `$0.45`: to the cent, never `$-0.00`. A price under a cent that is not zero keeps four
/// decimals (`$0.0025` per second), since to the cent it would read as free.
pub fn usd(amount: f64) -> String {
    let amount = round_usd(amount);
    let sign = if amount < 0.0 { "-" } else { "" };
    let size = amount.abs();
    let fine = format!("{size:.4}");
    if size < 0.01 && fine != "0.0000" {
        return format!("{sign}${fine}");
    }
    let cents = format!("{size:.2}");
    if cents == "0.00" {
        return "$0.00".to_owned();
    }
    format!("{sign}${cents}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 35 finding 5 and issue 34 finding 6: amounts to the cent, no negative zero, and
    /// structured amounts without float noise.
    #[test]
    fn amounts_read_to_the_cent_without_negative_zero_or_float_noise() {
        assert_eq!(usd(0.03), "$0.03");
        assert_eq!(usd(0.45), "$0.45");
        assert_eq!(usd(0.03 * 15.0), "$0.45");
        assert_eq!(usd(0.0025), "$0.0025");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(-0.0), "$0.00");
        assert_eq!(usd(0.1 + 0.2 - 0.3 - 1e-17), "$0.00");
        assert_eq!(usd(-1e-9), "$0.00");
        assert_eq!(usd(0.00001), "$0.00");
        assert_eq!(usd(0.06 - 0.03 - 0.03), "$0.00");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(-0.05), "-$0.05");

        assert_eq!(round_usd(0.03 * 15.0), 0.45);
        assert_eq!(round_usd(0.1 + 0.2), 0.3);
        assert_eq!(round_usd(0.0025), 0.0025);
        assert!(round_usd(-1e-12).is_sign_positive());
        assert_eq!(serde_json::json!(round_usd(0.03 * 15.0)).to_string(), "0.45");
    }
}
