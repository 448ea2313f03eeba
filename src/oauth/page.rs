//! The pages a person sees: the consent page and plain messages. Rendered here, whole: no script
//! (they work with JavaScript off), no remote resources, nothing framed (a clickjacking page
//! cannot lay them under its own buttons), every value from a client escaped. The referrer goes
//! to this server only: with none at all, browsers post the form with `Origin: null`, which the
//! Origin guard rightly refuses.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};

use super::{pending::Pending, OAuth};
use crate::journal::Limits;

/// Nothing but the page's own inline style; no frames, no base, forms only to this server.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}\
h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
.hint{color:#555;font-size:.9rem;font-weight:normal}.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6rem;border-radius:4px}\
.buttons{margin-top:1.5rem;display:flex;gap:1rem}button{font-size:1rem;padding:.5rem 1.2rem}";

/// `text` with the characters that mean something in HTML escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with `title` and `body` (already HTML).
pub(super) fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<meta name=\"referrer\" content=\"same-origin\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// A page that says what went wrong and what to do.
pub(super) fn problem(status: StatusCode, message: &str) -> Response {
    document(
        status,
        "Cannot connect",
        &format!("<h1>Cannot connect</h1><p>{}</p>", escape(message)),
    )
}

/// What the person typed, shown again when the form comes back with an error (never the key).
#[derive(Debug, Default, Clone)]
pub(super) struct Entered {
    pub spend: String,
    pub jobs: String,
    /// "Ask me before spending more than": blank by default, which is the server's setting
    /// (never the operator's value copied in, so that their later changes reach the person).
    pub confirm: String,
}

/// The consent page for `pending`, with `error` above the form when an answer was refused.
pub(super) fn consent(
    oauth: &OAuth,
    pending: &Pending,
    error: Option<&str>,
    entered: Option<&Entered>,
    status: StatusCode,
) -> Response {
    let app = pending.client_name.as_deref().unwrap_or("An unnamed app");
    let back_to = reqwest::Url::parse(&pending.redirect_uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(host) => format!("{}://{host}", u.scheme()),
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let limits = oauth.0.operator_limits;
    let defaults = Entered {
        spend: limits.max_spend_usd_per_day.map(|v| v.to_string()).unwrap_or_default(),
        jobs: limits.max_jobs_per_hour.map(|v| v.to_string()).unwrap_or_default(),
        confirm: String::new(),
    };
    let entered = entered.unwrap_or(&defaults);
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Connect {app} to RunComfy</h1>
{error}<p><strong>{app}</strong> (answered at <code>{back_to}</code>) asks to use this RunComfy image server for you. If you allow it, it will be able to:</p>
<ul>
<li>make and edit images and other media with RunComfy's models (Dreamina 4.0 and the catalogue), <strong>paid from your RunComfy balance</strong>;</li>
<li>see, follow and cancel the jobs it starts, and read your spending and balance;</li>
<li>nothing else: it never sees your key, and it cannot reach anyone else's jobs.</li>
</ul>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="request" value="{request}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="api_key">Your RunComfy API key <span class="hint">(RunComfy dashboard, API Keys). Checked with RunComfy once, kept encrypted, never shown again.</span></label>
<input id="api_key" name="api_key" type="password" autocomplete="off" required>
<label for="max_spend">Daily spending limit, US dollars <span class="hint">(per rolling 24 hours{spend_hint})</span></label>
<input id="max_spend" name="max_spend_usd_per_day" inputmode="decimal" value="{spend}">
<label for="max_jobs">Jobs per hour <span class="hint">({jobs_hint})</span></label>
<input id="max_jobs" name="max_jobs_per_hour" inputmode="numeric" value="{jobs}">
<label for="confirm_above">Ask me before spending more than, US dollars per call <span class="hint">(your app shows the estimated cost and starts only on your yes; an app that cannot ask is refused such calls; 0: every paid call; {confirm_hint})</span></label>
<input id="confirm_above" name="confirm_above_usd" inputmode="decimal" value="{confirm}">
<div class="buttons"><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></div>
</form>
<p class="hint">To disconnect later, revoke the connection in {app}, or remove every connection made with your key at <a href="/oauth/disconnect">/oauth/disconnect</a>.</p>"#,
        app = escape(app),
        back_to = escape(&back_to),
        request = escape(&pending.seal(oauth)),
        csrf = escape(&pending.csrf),
        spend = escape(&entered.spend),
        jobs = escape(&entered.jobs),
        confirm = escape(&entered.confirm),
        spend_hint = match limits.max_spend_usd_per_day {
            Some(v) => format!("; at most {} on this server; blank: that", crate::money::usd(v)),
            None => "; blank: no limit".to_owned(),
        },
        confirm_hint = match oauth.0.operator_confirm_above_usd {
            Some(v) => format!("at most {} on this server; blank: that", crate::money::usd(v)),
            None => "blank: never ask".to_owned(),
        },
        jobs_hint = match limits.max_jobs_per_hour {
            Some(v) => format!("at most {v} on this server; blank: that"),
            None => "blank: no limit".to_owned(),
        },
    );
    document(status, &format!("Connect {app} to RunComfy"), &body)
}

/// The person's limits from the form: blank is the operator's; more than the operator's is
/// refused, saying the ceiling.
pub(super) fn chosen_limits(operator: Limits, entered: &Entered) -> Result<Limits, String> {
    let spend =
        match entered.spend.trim().trim_start_matches('$') {
            "" => operator.max_spend_usd_per_day,
            raw => match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => match operator.max_spend_usd_per_day {
                    Some(ceiling) if v > ceiling => {
                        return Err(format!(
                            "The daily spending limit can be at most {} on this server.",
                            crate::money::usd(ceiling)
                        ))
                    }
                    _ => Some(v),
                },
                _ => return Err(
                    "The daily spending limit must be an amount of US dollars above 0, such as 5 or 2.50, or blank."
                        .to_owned(),
                ),
            },
        };
    let jobs = match entered.jobs.trim() {
        "" => operator.max_jobs_per_hour,
        raw => match raw.parse::<u32>() {
            Ok(v) if v > 0 => match operator.max_jobs_per_hour {
                Some(ceiling) if v > ceiling => {
                    return Err(format!(
                        "The job rate can be at most {ceiling} jobs per hour on this server."
                    ))
                }
                _ => Some(v),
            },
            _ => return Err("Jobs per hour must be a whole number above 0, or blank.".to_owned()),
        },
    };
    Ok(Limits {
        max_spend_usd_per_day: spend,
        max_jobs_per_hour: jobs,
    })
}

/// The person's own confirm threshold from the form: blank is the server's (`None`); more than
/// the operator's is refused, saying the ceiling (a person may be asked sooner, not later).
pub(super) fn chosen_confirm(operator: Option<f64>, entered: &str) -> Result<Option<f64>, String> {
    match entered.trim().trim_start_matches('$').trim() {
        "" => Ok(None),
        raw => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => match operator {
                Some(ceiling) if v > ceiling => Err(format!(
                    "\"Ask me before spending more than\" can be at most {} on this server (its operator asks for a confirmation above that), or blank for that.",
                    crate::money::usd(ceiling)
                )),
                _ => Ok(Some(v)),
            },
            _ => Err(
                "\"Ask me before spending more than\" must be an amount of US dollars, 0 or more, such as 1 or 0.50, or blank for this server's setting."
                    .to_owned(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_clients_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn limits_default_to_the_operators_and_cannot_pass_them() {
        let operator = Limits {
            max_spend_usd_per_day: Some(10.0),
            max_jobs_per_hour: None,
        };
        let entered = |spend: &str, jobs: &str| Entered {
            spend: spend.into(),
            jobs: jobs.into(),
            confirm: String::new(),
        };
        assert_eq!(chosen_limits(operator, &entered("", "")).unwrap(), operator);
        let own = chosen_limits(operator, &entered("$2.50", "6")).unwrap();
        assert_eq!(own.max_spend_usd_per_day, Some(2.5));
        assert_eq!(own.max_jobs_per_hour, Some(6));
        assert!(chosen_limits(operator, &entered("11", ""))
            .unwrap_err()
            .contains("$10.00"));
        assert!(chosen_limits(operator, &entered("-1", "")).is_err());
        assert!(chosen_limits(operator, &entered("", "0")).is_err());
    }

    #[test]
    fn a_confirm_threshold_is_blank_or_a_non_negative_amount_within_the_operators() {
        assert_eq!(chosen_confirm(None, " "), Ok(None), "blank: the server's");
        assert_eq!(chosen_confirm(None, "$0.50"), Ok(Some(0.5)));
        assert_eq!(chosen_confirm(None, "0"), Ok(Some(0.0)), "0: every paid call");
        assert_eq!(
            chosen_confirm(None, "1e6"),
            Ok(Some(1e6)),
            "no ceiling without the operator's"
        );
        assert_eq!(chosen_confirm(Some(2.0), "2"), Ok(Some(2.0)));
        assert!(chosen_confirm(Some(2.0), "2.01").unwrap_err().contains("at most $2.00"));
        for bad in ["-1", "NaN", "inf", "-0.01", "1,5", "five", "1e999"] {
            let why = chosen_confirm(None, bad).unwrap_err();
            assert!(why.contains("0 or more"), "{bad}: {why}");
        }
    }
}
