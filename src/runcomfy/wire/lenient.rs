//! Field readers that take what the upstream sends: a number as a string, a single string for a
//! list, anything else as "not given" rather than a failed answer.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub(super) fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

pub(super) fn lenient_cost<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|c| c.is_finite() && *c >= 0.0))
}

pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty()))
}

pub(super) fn lenient_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s],
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "super::lenient_u32")]
        small: Option<u32>,
        #[serde(default, deserialize_with = "super::lenient_u64")]
        large: Option<u64>,
        #[serde(default, deserialize_with = "super::lenient_string")]
        one: Option<String>,
        #[serde(default, deserialize_with = "super::lenient_strings")]
        many: Vec<String>,
    }

    fn read(value: serde_json::Value) -> Fields {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn numbers_and_strings_are_read_as_sent_or_not_at_all() {
        let f = read(json!({"small": " 7 ", "large": 5_000_000_000u64, "one": "x", "many": "y"}));
        assert_eq!((f.small, f.large), (Some(7), Some(5_000_000_000)));
        assert_eq!(f.one.as_deref(), Some("x"));
        assert_eq!(f.many, ["y"], "a single string is a list of one");

        let f = read(json!({"small": 5_000_000_000u64, "large": -1, "one": "", "many": ["a", 3, "", null, "b"]}));
        assert_eq!((f.small, f.large), (None, None), "out of range is not given");
        assert_eq!(f.one, None, "an empty string is not given");
        assert_eq!(f.many, ["a", "b"], "only the non-empty strings of a list");

        let f = read(json!({"small": [1], "large": {"n": 1}, "one": 3, "many": {"a": "b"}}));
        assert_eq!((f.small, f.large, f.one), (None, None, None));
        assert!(f.many.is_empty());
    }
}
