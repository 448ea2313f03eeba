//! What a valid submit to a catalogue model makes and costs, read from its entry as upstream
//! bills it: the outputs follow the entry's `categories` (one PNG, one MP4 or one WAV, by the
//! category's last word, as RunComfy's own nodes read it: its `kind` is always "model"), and the price
//! its `price_unit` — `output`: `base_price_usd` per output, `second`: per second of the input's
//! `duration`, else the schema's default.

use serde_json::Value;

use super::state::Media;

/// Every catalogue job makes one output (Dreamina's batches take the hand-written path).
pub(crate) const OUTPUTS: u32 = 1;
/// The long side of a catalogue image, the short one following its `aspect_ratio`.
const IMAGE_SIDE: u32 = 1024;
/// Audio follows an input `duration` up to this, so a result stays under a megabyte.
const MAX_AUDIO_MILLIS: u32 = 60_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) media: Media,
    /// An image's width and height (unused by the other kinds).
    pub(crate) size: (u32, u32),
    pub(crate) cost_usd: f64,
}

/// The job `input` (already valid against the entry's schema) makes for `entry`.
pub(crate) fn plan(entry: &Value, input: &Value) -> Plan {
    let made = entry["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|c| ["video", "audio", "image"].into_iter().find(|kind| c.ends_with(kind)));
    let media = match made {
        Some("video") => Media::Video,
        Some("audio") => Media::Audio {
            millis: input["duration"]
                .as_f64()
                .map_or(1000, |s| (s * 1000.0).clamp(100.0, f64::from(MAX_AUDIO_MILLIS)) as u32),
        },
        _ => Media::Image,
    };
    let base = entry["base_price_usd"].as_f64().unwrap_or(0.0);
    let units = match entry["price_unit"].as_str() {
        Some("second") => duration(entry, input),
        _ => f64::from(OUTPUTS),
    };
    Plan {
        media,
        size: image_size(input["aspect_ratio"].as_str()),
        // Rounded to micro-dollars: 0.1 × 3 should cost 0.3, not 0.30000000000000004.
        cost_usd: (base * units * 1e6).round() / 1e6,
    }
}

/// The seconds a per-second job is billed for: the input's, else the schema's default, else the
/// one second the simulator's clip lasts.
fn duration(entry: &Value, input: &Value) -> f64 {
    input["duration"]
        .as_f64()
        .or_else(|| entry["input_schema"]["properties"]["duration"]["default"].as_f64())
        .unwrap_or(1.0)
}

/// `"16:9"` → 1024×576; anything that is not `W:H` (`auto`, `adaptive`, none) → square.
fn image_size(aspect_ratio: Option<&str>) -> (u32, u32) {
    let ratio = aspect_ratio
        .and_then(|r| r.split_once(':'))
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0);
    let Some((w, h)) = ratio else {
        return (IMAGE_SIDE, IMAGE_SIDE);
    };
    let short = |long: u32, short: u32| (IMAGE_SIDE * short / long).max(1);
    if w >= h {
        (IMAGE_SIDE, short(w, h))
    } else {
        (short(h, w), IMAGE_SIDE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(made: &str, price: f64, unit: &str) -> Value {
        json!({"kind": "model", "categories": [format!("text-to-{made}")], "base_price_usd": price, "price_unit": unit, "input_schema": {
            "type": "object", "properties": {"duration": {"type": "integer", "default": 5}}}})
    }

    #[test]
    fn per_second_prices_follow_the_duration_or_its_default() {
        let video = entry("video", 0.1, "second");
        let given = plan(&video, &json!({"prompt": "x", "duration": 12}));
        assert_eq!(given.media, Media::Video);
        assert_eq!(given.cost_usd, 1.2);
        assert_eq!(plan(&video, &json!({"prompt": "x"})).cost_usd, 0.5);
        assert_eq!(plan(&video, &json!({"duration": 3})).cost_usd, 0.3);
    }

    #[test]
    fn per_output_prices_are_one_output() {
        let image = plan(&entry("image", 0.04, "output"), &json!({"duration": 9}));
        assert_eq!(image.media, Media::Image);
        assert_eq!(image.cost_usd, 0.04);
    }

    #[test]
    fn audio_lasts_the_input_duration_within_bounds_else_a_second() {
        let audio = entry("audio", 0.01, "output");
        let millis = |input: Value| plan(&audio, &input).media;
        assert_eq!(millis(json!({"text": "x"})), Media::Audio { millis: 1000 });
        assert_eq!(millis(json!({"duration": 2.5})), Media::Audio { millis: 2500 });
        assert_eq!(millis(json!({"duration": 3600})), Media::Audio { millis: 60_000 });
        assert_eq!(millis(json!({"duration": 0})), Media::Audio { millis: 100 });
    }

    #[test]
    fn image_sizes_follow_the_aspect_ratio() {
        assert_eq!(image_size(Some("16:9")), (1024, 576));
        assert_eq!(image_size(Some("9:16")), (576, 1024));
        assert_eq!(image_size(Some("1:1")), (1024, 1024));
        assert_eq!(image_size(Some("auto")), (1024, 1024));
        assert_eq!(image_size(Some("0:1")), (1024, 1024));
        assert_eq!(image_size(None), (1024, 1024));
    }
}
