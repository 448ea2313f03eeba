//! ChatGPT's app directory checks that whoever submits an app controls the server's domain:
//! OpenAI hands out a token and fetches it back, as plain text, from
//! `/.well-known/openai-apps-challenge` on the server's host. The operator gives the token with
//! `--openai-apps-challenge` (or its variable); without one the path is an ordinary 404.

use std::sync::Arc;

use axum::{http::header, routing::get, Router};

pub(crate) const PATH: &str = "/.well-known/openai-apps-challenge";

/// The route, when a token is set. It sits behind the same guards as every other route, so a
/// public name must be an `--allowed-host`, as it must be for `/mcp`.
pub(crate) fn router(token: Option<Arc<str>>) -> Router {
    let Some(token) = token else {
        return Router::new();
    };
    Router::new().route(
        PATH,
        get(move || {
            let token = token.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token.to_string()) }
        }),
    )
}

/// A token as given: surrounding whitespace dropped (a pasted newline), blank means none. It goes
/// into a response body only, but it is one opaque word, so anything else is a mistake to report.
pub(crate) fn parse(raw: Option<&str>) -> Result<Option<Arc<str>>, String> {
    let Some(token) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if token.len() > 512 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "--openai-apps-challenge: the token must be the one word OpenAI gave (printable ASCII, no spaces, at most 512 characters), not {} characters with other text",
            token.len()
        ));
    }
    Ok(Some(token.into()))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_token_is_one_printable_word_and_blank_means_none() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("  \n")), Ok(None));
        assert_eq!(parse(Some(" abc-123_XYZ\n")).unwrap().as_deref(), Some("abc-123_XYZ"));
        assert!(parse(Some("two words")).is_err());
        assert!(parse(Some(&"x".repeat(513))).is_err());
    }
}
