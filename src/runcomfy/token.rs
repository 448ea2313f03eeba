//! The API token, kept out of every `Debug`, `Display` and log line by construction.

use std::fmt;

/// A RunComfy API token. It can only be read through [`ApiToken::expose`], which the HTTP client
/// calls when it builds the `Authorization` header; everything else sees `ApiToken(***)`.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// `None` for an empty or blank value, so an exported-but-empty variable counts as unset.
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into().trim().to_owned();
        (!raw.is_empty()).then_some(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let token = ApiToken::new("sk-very-secret").unwrap();
        assert_eq!(format!("{token:?}"), "ApiToken(***)");
        assert!(!format!("{:?}", Some(token)).contains("secret"));
    }

    #[test]
    fn blank_is_unset() {
        assert!(ApiToken::new("  ").is_none());
        assert_eq!(ApiToken::new(" t ").unwrap().expose(), "t");
    }
}
