//! MCP prompts: ready-made requests a person picks from the host's menu (Claude Desktop shows them
//! as commands), each teaching the model one of Dreamina 4.0's strengths and the arguments that
//! bring it out: exact text in an image, a consistent set of images from one job, an edit that
//! keeps a face or a product identical, and a product shot. A prompt only writes the request; the
//! model still calls the tools, and every job is still estimated, limited and paid as any other.
//!
//! Prompt arguments arrive as strings (the protocol has no other type): numbers are read here,
//! and a bad one is refused with what would be accepted.

use std::sync::LazyLock;

use rmcp::{
    handler::server::{router::prompt::PromptRouter, wrapper::Parameters},
    model::{GetPromptResult, PromptMessage, Role},
    prompt, prompt_router, ErrorData,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::RunComfyServer;
use crate::{dreamina::MAX_PROMPT_CHARS, jobs::price::MAX_SET_IMAGES};

/// Every prompt, made once per process (the same for every session).
pub(super) static PROMPTS: LazyLock<PromptRouter<RunComfyServer>> = LazyLock::new(RunComfyServer::prompt_router);

/// Images a consistent set asks for when the person does not say.
const DEFAULT_SET: u32 = 4;

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct ExactTextArgs {
    /// The words that must appear in the image, exactly as they should be spelled.
    text: String,
    /// What the image is: a poster, a shop sign, a book cover, a label… (optional)
    #[serde(default)]
    design: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct SetArgs {
    /// Who or what every image shows: a character, a mascot, a product…
    subject: String,
    /// How many images the set should hold, 2 to 15 (default 4).
    #[serde(default)]
    count: Option<String>,
    /// The look all of them share: a style, a palette, a medium (optional).
    #[serde(default)]
    style: Option<String>,
    /// An image of the subject to keep it from: an earlier result's request_id#n, an https URL or an allowed local file (optional).
    #[serde(default)]
    reference: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct KeepArgs {
    /// The image to edit: an earlier result's request_id#n, an https URL or an allowed local file.
    image: String,
    /// What to change: the background, the clothes, the season, the lighting…
    change: String,
    /// What must stay identical (default: the face, or the product, and everything that identifies it).
    #[serde(default)]
    keep: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct ProductArgs {
    /// The product, as a shopper would name it: "a matte black ceramic coffee mug".
    product: String,
    /// Where it is shown: a white studio sweep, a marble counter, outdoors at golden hour… (optional)
    #[serde(default)]
    setting: Option<String>,
    /// A photo of the real product to keep it exact: request_id#n, an https URL or an allowed local file (optional).
    #[serde(default)]
    image: Option<String>,
}

/// `Some(text)` unless blank: a host may send an optional argument as "".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn required<'a>(name: &str, value: &'a str) -> Result<&'a str, ErrorData> {
    match value.trim() {
        "" => Err(ErrorData::invalid_params(format!("{name} must not be empty"), None)),
        value => Ok(value),
    }
}

/// The one message a prompt sends: the person's request, as the model reads it.
fn request(description: &str, text: String) -> GetPromptResult {
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(description)
}

/// How many images a set holds: 2 up to what one job can return beside its `references`.
fn set_size(count: Option<&str>, references: u32) -> Result<u32, ErrorData> {
    let most = MAX_SET_IMAGES - references;
    let Some(count) = count else {
        return Ok(DEFAULT_SET.min(most));
    };
    match count.parse::<u32>() {
        Ok(n) if (2..=most).contains(&n) => Ok(n),
        _ => Err(ErrorData::invalid_params(
            format!(
                "count is {count:?}; a set is 2 to {most} images (one Dreamina 4.0 job returns at most {MAX_SET_IMAGES}, reference images included)"
            ),
            None,
        )),
    }
}

#[prompt_router]
impl RunComfyServer {
    #[prompt(
        name = "exact_text",
        title = "Image with exact text",
        description = "An image whose words must be spelled exactly (a poster, a sign, a label): Dreamina 4.0 renders text well when the prompt quotes it."
    )]
    fn exact_text(&self, Parameters(args): Parameters<ExactTextArgs>) -> Result<GetPromptResult, ErrorData> {
        let text = required("text", &args.text)?;
        let design = given(&args.design).unwrap_or("an image");
        Ok(request(
            "Exact text in an image",
            format!(
                "Make {design} that shows exactly this text: \"{text}\".\n\n\
                 Use generate_image_and_wait. In the prompt, put the words in double quotes exactly as above (same spelling, capitals and punctuation), and say where they go and in what lettering (for example: bold sans-serif, centred at the top, dark on light). Keep the rest of the description short so the text stays the focus; Dreamina 4.0 renders English and Chinese text well, and a few words better than a paragraph. Set scale to 0.7 so the prompt is followed closely, force_single to true for one image, and a size large enough to read it (2048x2048 or a wide 2560x1440 for a banner). The prompt may hold at most {MAX_PROMPT_CHARS} characters.\n\n\
                 When the image comes back, read its text. If a letter is wrong, edit that image instead of starting over: generate_image_and_wait with images [its request_id#n] and a prompt such as: change the text to \"{text}\", keep everything else."
            ),
        ))
    }

    #[prompt(
        name = "consistent_set",
        title = "A consistent set of images",
        description = "Several images of the same subject in one style (a character sheet, a storyboard, a product range) from one Dreamina 4.0 job, which returns a related set of up to 15 images when force_single is off."
    )]
    fn consistent_set(&self, Parameters(args): Parameters<SetArgs>) -> Result<GetPromptResult, ErrorData> {
        let subject = required("subject", &args.subject)?;
        let reference = given(&args.reference);
        let count = set_size(given(&args.count), u32::from(reference.is_some()))?;
        let style = given(&args.style)
            .map(|s| format!(" in this style: {s}"))
            .unwrap_or_default();
        let keep = match reference {
            Some(image) => format!(" Pass images [\"{image}\"] so every image keeps the subject of that reference, and say so in the prompt (\"the character from the reference image\")."),
            None => String::new(),
        };
        Ok(request(
            "A consistent set of images",
            format!(
                "Make a set of {count} images of {subject}{style}, the same subject looking the same in every image.\n\n\
                 Use one generate_image_and_wait call with force_single false (the default) and count 1: one Dreamina 4.0 job returns a related set of up to {MAX_SET_IMAGES} images that share the subject and the style, which separate jobs do not. Write the prompt as a series: \"a set of {count} images of …\", then what each one shows (image 1: …, image 2: …), and what must stay the same in all (face, clothes, colours, lighting).{keep} The model decides how many images the set holds and may return fewer than {count}; each image of the set is paid for, so the cost estimate is a range up to a full set. Raise max_wait_seconds (to 120, say): a set takes longer than a single image.\n\n\
                 Show the images in order. To change one of them later, edit it with images [its request_id#n] rather than making a new set."
            ),
        ))
    }

    #[prompt(
        name = "keep_identity_edit",
        title = "Edit that keeps a face or product identical",
        description = "Change the background, clothes, season or light of a photo while the face, or the product, stays exactly as it is."
    )]
    fn keep_identity_edit(&self, Parameters(args): Parameters<KeepArgs>) -> Result<GetPromptResult, ErrorData> {
        let image = required("image", &args.image)?;
        let change = required("change", &args.change)?;
        let keep = given(&args.keep).unwrap_or(
            "the person's face, features, skin tone, hairstyle and expression (or, for a product, its shape, proportions, colours, logo and label text)",
        );
        Ok(request(
            "An edit that keeps the subject identical",
            format!(
                "Edit the image {image}: {change}. Keep {keep} exactly as in the original.\n\n\
                 Use generate_image_and_wait with images [\"{image}\"] (an edit of that image) and force_single true. Write the prompt as two parts: first what stays, word for word (\"keep the woman's face, hair and expression exactly as in the reference image\", \"keep the bottle's shape, label and the text \\\"…\\\" unchanged\"), then the one change. Name only what changes; do not restyle the whole picture, and avoid changes that turn or hide the face or the product (a new pose, a different angle), since those are where a likeness is lost. Leave scale at its default 0.5: higher pushes the prompt over the reference.\n\n\
                 Compare the result with the original. If the likeness drifted, edit the original again with a stricter first part rather than editing the edit."
            ),
        ))
    }

    #[prompt(
        name = "product_shot",
        title = "Product shot",
        description = "A clean commercial photo of a product: studio light, a plain or styled setting, the label legible; from a description or a photo of the real product."
    )]
    fn product_shot(&self, Parameters(args): Parameters<ProductArgs>) -> Result<GetPromptResult, ErrorData> {
        let product = required("product", &args.product)?;
        let setting = given(&args.setting).unwrap_or("a seamless white studio backdrop");
        let source = match given(&args.image) {
            Some(image) => format!(" Pass images [\"{image}\"], the real product, and begin the prompt with: keep the product exactly as in the reference image (shape, colours, logo, label text); place it on {setting}."),
            None => String::new(),
        };
        Ok(request(
            "A product shot",
            format!(
                "Make a product photo of {product} on {setting}.\n\n\
                 Use generate_image_and_wait with force_single true and size 2048x2048 (square, for a shop) or 2304x1728 (4:3). Describe it as a commercial photograph: the product centred at a three-quarter angle, soft diffused key light with a gentle reflection and a soft contact shadow, sharp focus on the product, nothing else competing with it. Any words on the product go in double quotes so they are rendered exactly.{source} If the user wants options, set count to 2 or 3: each is a separate paid job.\n\n\
                 Check the label text and the product's proportions in the result before offering it."
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_bounded_by_what_one_job_returns() {
        assert_eq!(set_size(None, 0).unwrap(), DEFAULT_SET);
        assert_eq!(set_size(Some("15"), 0).unwrap(), 15);
        assert!(set_size(Some("15"), 1).is_err(), "a reference counts towards the 15");
        for bad in ["1", "16", "four", "-2"] {
            let e = set_size(Some(bad), 0).unwrap_err();
            assert!(e.message.contains("2 to 15"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn every_prompt_is_listed_with_its_arguments() {
        let names: Vec<String> = PROMPTS.list_all().into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["consistent_set", "exact_text", "keep_identity_edit", "product_shot"]
        );
    }
}
