//! Request ids are checked before they are put into a URL path, so that nothing a model or user
//! types (`../x`, `a/b`, `%2F`, `?`, `#`) can steer a request to another endpoint.

use std::fmt;

/// RunComfy's ids are UUIDs; we accept any id made of ASCII letters, digits, `-` and `_`, which
/// is wide enough for other id styles and narrow enough to be safe in a path segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

pub const MAX_REQUEST_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request_id {shown} is not valid: {reason}. A request_id is the value returned by generate_image (letters, digits, '-' and '_', at most {MAX_REQUEST_ID_LEN} characters), e.g. 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a2b")]
pub struct InvalidRequestId {
    shown: String,
    reason: &'static str,
}

impl RequestId {
    pub fn parse(raw: &str) -> Result<Self, InvalidRequestId> {
        let trimmed = raw.trim();
        let fail = |reason| InvalidRequestId {
            shown: format!("{:?}", crate::text::ellipsis(raw, SHOWN_CHARS)),
            reason,
        };
        if trimmed.is_empty() {
            return Err(fail("it is empty"));
        }
        if trimmed.chars().count() > MAX_REQUEST_ID_LEN {
            return Err(fail("it is too long"));
        }
        if !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(fail("it contains characters other than letters, digits, '-' and '_'"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How much of a bad id an error message repeats.
const SHOWN_CHARS: usize = 41;

/// Deserialising checks the id, so a tool argument of this type is always safe to use.
impl<'de> serde::Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        RequestId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl schemars::JsonSchema for RequestId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RequestId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REQUEST_ID_LEN,
            "pattern": crate::schema_check::REQUEST_ID,
        })
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_trims() {
        let id = RequestId::parse(" 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a2b ").unwrap();
        assert_eq!(id.as_str(), "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a2b");
    }

    #[test]
    fn rejects_anything_that_could_leave_the_path_segment() {
        for bad in ["../x", "a/b", "%2F", "a?b", "a#b", "", "  ", "a b", "é", "a\\b", "a.b"] {
            assert!(RequestId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(RequestId::parse(&"a".repeat(129)).is_err());
        assert!(RequestId::parse(&"a".repeat(128)).is_ok());
    }
}
