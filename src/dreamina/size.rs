//! Dreamina 4.0's output sizes: the documented list, and the spellings a size is accepted in.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The 11 documented output sizes, in the vendor's order.
pub(super) const SIZES: [(&str, u32, u32); 11] = [
    ("1024x1024(1:1)", 1024, 1024),
    ("2048x2048(1:1)", 2048, 2048),
    ("2304x1728(4:3)", 2304, 1728),
    ("2496x1664(3:2)", 2496, 1664),
    ("2560x1440(16:9)", 2560, 1440),
    ("3024x1296(21:9)", 3024, 1296),
    ("4096x4096(1:1)", 4096, 4096),
    ("4694x3520(4:3)", 4694, 3520),
    ("4992x3328(3:2)", 4992, 3328),
    ("5404x3040(16:9)", 5404, 3040),
    ("6198x2656(21:9)", 6198, 2656),
];
pub(super) const DEFAULT_SIZE: usize = 1;
/// The sizes at the default resolution (2K), one for each ratio.
const DEFAULT_RESOLUTION: std::ops::Range<usize> = 1..6;

/// One of the documented sizes. Accepts the documented spelling (`2560x1440(16:9)`), the bare
/// `WIDTHxHEIGHT` form (`2560x1440`, `2560×1440`, `2560 X 1440`) and a ratio alone (`16:9`), which
/// means the size of that ratio at the default resolution (2K: one size per ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(usize);

impl Size {
    pub fn parse(raw: &str) -> Option<Self> {
        let compact: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let compact = compact.replace('\u{d7}', "x");
        if let Some(index) = Self::of_ratio(&compact) {
            return Some(Self(index));
        }
        let dims = compact.split('(').next().unwrap_or_default();
        let (w, h) = dims.split_once('x')?;
        let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
        let index = SIZES.iter().position(|&(_, sw, sh)| sw == w && sh == h)?;
        // A ratio that contradicts the dimensions ("1024x1024(16:9)") is a mistake, not a size.
        if compact.contains('(') && compact != SIZES[index].0 {
            return None;
        }
        Some(Self(index))
    }

    /// `16:9` → the 2K size of that ratio (`2560x1440(16:9)`); 1:1 is the default 2048x2048.
    fn of_ratio(compact: &str) -> Option<usize> {
        let (w, h) = compact.split_once(':')?;
        let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
        let wanted = format!("({w}:{h})");
        DEFAULT_RESOLUTION.clone().find(|&i| SIZES[i].0.ends_with(&wanted))
    }

    /// The size's ratio, e.g. `16:9`.
    pub fn ratio(self) -> &'static str {
        let spelled = self.as_str();
        let open = spelled.find('(').map_or(0, |i| i + 1);
        spelled[open..].trim_end_matches(')')
    }

    pub fn all() -> impl Iterator<Item = Size> {
        (0..SIZES.len()).map(Size)
    }

    /// The documented spelling, as RunComfy expects it.
    pub fn as_str(self) -> &'static str {
        SIZES[self.0].0
    }

    pub fn width(self) -> u32 {
        SIZES[self.0].1
    }

    pub fn height(self) -> u32 {
        SIZES[self.0].2
    }

    fn valid_values() -> String {
        SIZES.map(|s| s.0).join(", ")
    }
}

impl Default for Size {
    fn default() -> Self {
        Self(DEFAULT_SIZE)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Size::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{raw:?} is not a supported size. Use one of: {} (the bare form WIDTHxHEIGHT, e.g. 2560x1440, or a ratio alone, e.g. 16:9 for the 2K size of that ratio, is accepted too)",
                Size::valid_values()
            ))
        })
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    // Inlined: several clients mishandle `$ref`.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let values: Vec<&str> = SIZES.iter().map(|s| s.0).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_forms_and_reject_the_rest() {
        assert_eq!(Size::parse("2560x1440(16:9)").unwrap().as_str(), "2560x1440(16:9)");
        assert_eq!(Size::parse("2560x1440").unwrap().as_str(), "2560x1440(16:9)");
        assert_eq!(Size::parse(" 6198 × 2656 ").unwrap().height(), 2656);
        assert_eq!(Size::parse("1024X1024").unwrap().width(), 1024);
        for bad in ["3000x3000", "1024x1024(16:9)", "big", "", "2560x", "x1440"] {
            assert!(Size::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Size::all().count(), 11);
        assert_eq!(Size::default().as_str(), "2048x2048(1:1)");
        assert_eq!(Size::parse("16:9").unwrap().as_str(), "2560x1440(16:9)");
    }

    #[test]
    fn a_ratio_alone_is_the_2k_size_of_that_ratio() {
        let cases = [
            ("16:9", "2560x1440(16:9)"),
            ("1:1", "2048x2048(1:1)"),
            ("4:3", "2304x1728(4:3)"),
            ("21:9", "3024x1296(21:9)"),
        ];
        for (ratio, size) in cases {
            assert_eq!(Size::parse(ratio).map(Size::as_str), Some(size), "{ratio}");
        }
        assert!(Size::parse("5:4").is_none());
        assert_eq!(Size::parse("5404x3040").unwrap().ratio(), "16:9");
    }
}
