//! Turning a request into what is submitted, before anything is paid for: the endpoint picked,
//! the body built from the model's own schema (only keys it declares; see
//! [`ImageRequest::to_wire`]), every reference image resolved (a URL as given, an earlier job's
//! output through the journal or RunComfy, an allowed file or a data URI as a data URI) and its
//! size checked.
//! A batch submits the same [`Prepared`] body several times. Anything wrong is a
//! [`PrepareError`] naming the entry and the fix; no submit has been sent then.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{
    outputs::{JobImage, OutputError},
    prepare_model::{schema_of, Naming},
    price::{basis, Basis},
    Caller, JobService,
};
use crate::{
    dreamina::{self, Endpoint, ImageRequest, InputError, WIRE_SIZE_KEY},
    journal::JobRecord,
    media::inputs::{self, InputRecord, Resolved, Source},
    models::shape::Shape,
    runcomfy::{ApiError, RequestId, MAX_SUBMIT_BYTES},
};

/// A request ready to submit.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The model id it goes to.
    pub model: String,
    /// The body RunComfy receives.
    pub wire: Value,
    /// What the journal keeps: the body without any image bytes.
    pub params: Value,
    /// What the journal lists the job by: its prompt (or text) and size, as far as it has them.
    pub prompt: String,
    pub size: String,
    /// What the model's price is multiplied by in the estimate.
    pub basis: Basis,
    /// A Dreamina request's recipe, to run again or vary; `None` for any other model.
    pub recipe: Option<Recipe>,
}

/// The prompt and settings a job was made with, in the form the generate tools take, so that it
/// can be run again, varied or edited.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Recipe {
    /// The prompt, in full.
    pub prompt: String,
    /// The size chosen, e.g. `2048x2048(1:1)`; none: the model's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// How strongly the prompt steered it, 0 to 1.
    pub scale: f64,
    /// Whether exactly one image was asked for.
    pub force_single: bool,
    /// The reference images as they were given (a data URI given directly is only described); empty for text-to-image.
    pub images: Vec<String>,
}

/// What made a job, as far as this machine knows: the model it ran on and, for a Dreamina job,
/// its recipe. What to suggest after the job fails or is cancelled comes from it (a job of
/// another model is not run again by the Dreamina tools).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub model: String,
    /// `None`: a job of another model than Dreamina's.
    pub recipe: Option<Recipe>,
}

impl Prepared {
    pub fn origin(&self) -> Origin {
        Origin {
            model: self.model.clone(),
            recipe: self.recipe.clone(),
        }
    }
}

impl Recipe {
    /// From what the journal kept of a job (rows written before edits existed too).
    pub fn from_record(job: &JobRecord) -> Self {
        let inputs: Vec<InputRecord> = job
            .params
            .get("inputs")
            .and_then(|i| serde_json::from_value(i.clone()).ok())
            .unwrap_or_default();
        Self {
            prompt: job.prompt.clone(),
            // Only a size that was sent: rows from before sizes were optional always hold one.
            size: job.params.get(WIRE_SIZE_KEY).and_then(Value::as_str).map(str::to_owned),
            scale: job
                .params
                .get("scale")
                .and_then(Value::as_f64)
                .unwrap_or(crate::dreamina::DEFAULT_SCALE),
            force_single: job.params.get("force_single").and_then(Value::as_bool).unwrap_or(false),
            images: inputs.into_iter().map(|i| i.given).collect(),
        }
    }
}

#[derive(Debug)]
pub enum PrepareError {
    /// A rule or an entry of `images` that cannot be used, with what would work instead.
    Input(InputError),
    /// The model is not in RunComfy's catalogue, or the catalogue cannot say (the text says
    /// which, with the closest ids).
    Catalogue(String),
    /// Looking up the earlier job an entry names failed at RunComfy (try again).
    Lookup {
        field: String,
        id: RequestId,
        error: ApiError,
    },
}

impl From<InputError> for PrepareError {
    fn from(e: InputError) -> Self {
        Self::Input(e)
    }
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(e) => write!(f, "{e}"),
            Self::Catalogue(text) => write!(f, "{text}"),
            Self::Lookup { field, id, error } => {
                write!(f, "{field}: looking up job {id} at RunComfy failed: {error}")
            }
        }
    }
}

impl std::error::Error for PrepareError {}

impl JobService {
    /// Checks `request` and resolves its reference images, in order; the first entry that
    /// cannot be used is the error. Reads files and may ask RunComfy for an earlier job's
    /// result, but never submits.
    pub async fn prepare(&self, caller: &Caller, request: &ImageRequest) -> Result<Prepared, PrepareError> {
        request.validate()?;
        let endpoint = request.endpoint();
        let model_id = self.models.of(endpoint);
        let entry = self.model_entry(caller, model_id).await?;
        let schema = schema_of(&entry);
        let shape = Shape::of(&schema);
        if let Some(why) = shape.lacks(model_id, endpoint == Endpoint::Edit) {
            return Err(PrepareError::Catalogue(format!(
                "{why}. Nothing was submitted: start the server with {} naming a model that has it.",
                match endpoint {
                    Endpoint::TextToImage => "--model",
                    Endpoint::Edit => "--edit-model",
                }
            )));
        }
        let wire = request.to_wire(&shape, model_id)?;
        let naming = Naming::image_tool(shape.images.as_ref().map(|f| f.key.clone()));
        let built = self.build(caller, model_id, &schema, wire, &naming).await?;
        // Dreamina makes a set of images unless force_single; any other model is priced as
        // its entry says.
        let basis = if shape.force_single || [dreamina::TEXT_TO_IMAGE_MODEL, dreamina::EDIT_MODEL].contains(&model_id) {
            Basis::image_set(request.force_single, built.records.len())
        } else {
            basis(&entry, &schema, built.wire.as_object())
        };
        Ok(Prepared {
            model: model_id.to_owned(),
            wire: built.wire,
            params: built.params,
            prompt: request.prompt.clone(),
            size: request.size_label(&shape),
            basis,
            recipe: Some(Recipe {
                prompt: request.prompt.clone(),
                size: request.size.map(|s| s.as_str().to_owned()),
                scale: request.scale,
                force_single: request.force_single,
                images: built.records.into_iter().map(|r| r.given).collect(),
            }),
        })
    }

    /// One input entry resolved (see [`Source`]): a URL as given, an earlier job's image through
    /// the journal or RunComfy, an allowed file or a data URI as a data URI. `field` names it in
    /// the error.
    pub(super) async fn resolve(&self, caller: &Caller, field: String, entry: &str) -> Result<Resolved, PrepareError> {
        let input = |message: String| PrepareError::Input(InputError::new(field.clone(), message));
        Ok(match Source::parse(entry).map_err(input)? {
            Source::Url(url) => inputs::url(url),
            Source::DataUri(uri) => inputs::data_uri(&self.media.inputs, &uri).await.map_err(input)?,
            Source::File(path) => inputs::file(&self.media.inputs, path, entry).await.map_err(input)?,
            Source::Upload(id) => inputs::upload(entry, self.upload(caller, &id).await.map_err(input)?),
            Source::HostFile(file) => self.host_file(caller, &file).await.map_err(input)?,
            Source::Job { id, index } => match self.job_output(caller, &id, index).await {
                Ok(JobImage::Url(url)) => inputs::job_output(entry, url),
                Ok(JobImage::Saved(path)) => inputs::saved_copy(&self.media.inputs, path, entry)
                    .await
                    .map_err(input)?,
                Err(OutputError::Unusable(message)) => return Err(input(message)),
                Err(OutputError::Lookup(error)) => return Err(PrepareError::Lookup { field, id, error }),
            },
        })
    }

    /// What made `caller`'s job, from the journal (`None` for a job it does not hold): its
    /// model, and its prompt and settings when it is a Dreamina job.
    pub async fn origin(&self, caller: &Caller, id: &RequestId) -> Option<Origin> {
        let job = self.journal.get(caller.owner(), id).await?;
        let recipe = self.models.is_dreamina(&job.model).then(|| Recipe::from_record(&job));
        Some(Origin {
            model: job.model,
            recipe,
        })
    }

    /// The prompt and settings of `caller`'s Dreamina job, from the journal (`None` for a job of
    /// another model: its input is not a Dreamina recipe).
    pub async fn recipe(&self, caller: &Caller, id: &RequestId) -> Option<Recipe> {
        self.origin(caller, id).await.and_then(|origin| origin.recipe)
    }
}

pub(super) fn too_large(field: &str, bytes: usize) -> PrepareError {
    PrepareError::Input(InputError::new(
        field,
        format!(
            "add up to a {:.1} MiB request; RunComfy takes at most {} MiB per request. Pass fewer or smaller images, or https:// URLs instead of files",
            bytes as f64 / (1024.0 * 1024.0),
            MAX_SUBMIT_BYTES / (1024 * 1024)
        ),
    ))
}
