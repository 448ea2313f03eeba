//! What to do next after a job failed or was cancelled, from what made it ([`Origin`]): a
//! Dreamina job is made again with the image tools, any other model's with `run_model` and its
//! model id; a job this machine did not record gets advice that fits either.

use super::answer::ToolError;
use crate::{
    jobs::Origin,
    runcomfy::{RequestId, ResultResponse},
};

/// How long result URLs live: RunComfy publishes no figure for its Model API (the 7 days it
/// states are its Serverless product's), so none is promised. A job reference (`request_id#n`)
/// asks RunComfy for fresh URLs before it reuses one.
pub(super) const URLS_EXPIRE: &str =
    "Result URLs are hosted by RunComfy for a limited time: download anything worth keeping.";

/// The tool that makes such a job: the Dreamina image tools, or run_model for any other model.
pub(super) fn maker_tool(origin: Option<&Origin>) -> &'static str {
    match origin {
        Some(Origin { recipe: None, .. }) => "run_model",
        _ => "generate_image",
    }
}

/// The call that makes such a job again.
fn again(origin: Option<&Origin>) -> String {
    match origin {
        Some(Origin { recipe: Some(_), .. }) => format!("call {} again", maker_tool(origin)),
        Some(Origin { model, recipe: None }) => {
            format!("call {} again with model_id \"{model}\"", maker_tool(origin))
        }
        None => "start it again with the tool that made it (a new paid job)".to_owned(),
    }
}

/// What the job was to make.
fn made(origin: Option<&Origin>) -> (&'static str, &'static str) {
    match origin {
        Some(Origin { recipe: Some(_), .. }) => ("image", "prompt"),
        Some(Origin { recipe: None, .. }) => ("output", "input"),
        None => ("output", "prompt or input"),
    }
}

/// A job that failed at RunComfy: its error, and what to change before paying again.
pub(super) fn job_failed(id: &RequestId, answer: &ResultResponse, origin: Option<&Origin>) -> ToolError {
    let detail = answer
        .error_message()
        .unwrap_or_else(|| "RunComfy gave no reason".to_owned());
    let (_, input) = made(origin);
    ToolError::new(format!(
        "Job {id} failed on RunComfy: {detail}\nThe {input} may have been refused by the model's content rules, or the service failed. Adjust the {input} if that seems likely and {}.",
        again(origin)
    ))
}

/// A job that was cancelled before it made anything. `produced`: say that it produced nothing
/// (where its outcome was asked for, not only its status).
pub(super) fn job_cancelled(origin: Option<&Origin>, produced: bool) -> String {
    let (output, _) = made(origin);
    let mut again = again(origin);
    again[..1].make_ascii_uppercase();
    if produced {
        format!("The job was cancelled and produced no {output}. {again} if the {output} is still wanted.")
    } else {
        format!("The job was cancelled. {again} if the {output} is still wanted.")
    }
}

/// What to do with a finished image: edit it by its reference, or run the request again.
pub(super) fn how_to_go_on(first_reference: &str) -> String {
    format!("To edit or build on an image, call generate_image_and_wait with images: [\"{first_reference}\"] (each image's reference is listed) and a prompt saying what to change. Each call is a new paid job.")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jobs::Recipe;

    fn failed() -> ResultResponse {
        serde_json::from_value(json!({"status": "failed", "error": {"message": "NSFW"}})).unwrap()
    }

    fn origin(model: &str, dreamina: bool) -> Origin {
        Origin {
            model: model.to_owned(),
            recipe: dreamina.then(|| Recipe {
                prompt: "a cat".into(),
                size: None,
                scale: 0.5,
                force_single: false,
                images: Vec::new(),
            }),
        }
    }

    /// A failed or cancelled job of another model is never sent to the Dreamina tools: the
    /// advice names run_model and the model that made it.
    #[test]
    fn advice_after_a_failure_follows_what_made_the_job() {
        let id = RequestId::parse("job-1").unwrap();
        let video = origin("vendor/video-model", false);
        let text = job_failed(&id, &failed(), Some(&video)).text().to_owned();
        assert!(text.contains("NSFW"), "{text}");
        assert!(
            text.contains("call run_model again with model_id \"vendor/video-model\""),
            "{text}"
        );
        assert!(!text.contains("generate_image"), "{text}");
        let cancelled = job_cancelled(Some(&video), true);
        assert!(cancelled.contains("Call run_model again"), "{cancelled}");
        assert!(!cancelled.contains("generate_image"), "{cancelled}");

        let image = origin("bytedance/dreamina-4-0/text-to-image", true);
        let text = job_failed(&id, &failed(), Some(&image)).text().to_owned();
        assert!(
            text.ends_with("Adjust the prompt if that seems likely and call generate_image again."),
            "{text}"
        );
        assert_eq!(
            job_cancelled(Some(&image), true),
            "The job was cancelled and produced no image. Call generate_image again if the image is still wanted."
        );
        assert_eq!(
            job_cancelled(Some(&image), false),
            "The job was cancelled. Call generate_image again if the image is still wanted."
        );

        // Not recorded here: advice that fits whichever tool made it.
        let text = job_failed(&id, &failed(), None).text().to_owned();
        assert!(
            !text.contains("generate_image") && !text.contains("run_model"),
            "{text}"
        );
    }
}
