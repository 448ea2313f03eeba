//! The tool surface, one file per tool: its arguments, its output type, its one renderer, its
//! handler, and its [`ToolUnit`]: what the router, the app view and the tasks path need to know
//! about it. This is the router: it collects the units ([`UNITS`]), and a tool's name is written
//! only in its own `#[tool]` attribute; everything else asks [`Tools`] by the name a call carries.
//!
//! Adding a tool: a file here with its `#[tool_router]` and a `pub(super) const UNIT`, and a line
//! in [`UNITS`].

pub mod cancel_request;
pub mod check_status;
pub mod describe_model;
pub mod generate_image;
pub mod generate_image_and_wait;
pub mod generate_variations;
pub mod get_result;
pub mod list_jobs;
pub mod list_models;
pub mod run_model;
pub mod save_image;
mod started;
pub mod upload_image;

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{LazyLock, Once},
};

use rmcp::{handler::server::router::tool::ToolRouter, model::JsonObject};

use super::{
    args::{ArgumentRules, InvalidArgument},
    RunComfyServer,
};
use generate_image::GenerateArgs;
use get_result::DeliveryArgs;

/// Every tool's unit, in no particular order (`tools/list` is sorted by name).
const UNITS: [&ToolUnit; 12] = [
    &generate_image::UNIT,
    &check_status::UNIT,
    &get_result::UNIT,
    &cancel_request::UNIT,
    &generate_image_and_wait::UNIT,
    &list_jobs::UNIT,
    &save_image::UNIT,
    &upload_image::UNIT,
    &generate_variations::UNIT,
    &list_models::UNIT,
    &describe_model::UNIT,
    &run_model::UNIT,
];

/// What the rest of the MCP layer needs to know about a tool, declared in the tool's own file.
pub(super) struct ToolUnit {
    /// The tool's route, made by its `#[tool_router]`: its name, schemas, description and
    /// handler.
    pub router: fn() -> ToolRouter<RunComfyServer>,
    /// Who sees it and calls it.
    pub audience: Audience,
    /// Its results can carry inline images (they are answered through `shaped`): where such a
    /// result goes without `structuredContent`, its output schema is not declared.
    pub images: bool,
    /// For a tool a tasks-capable client runs as a task (one that starts jobs worth following):
    /// its arguments read as the jobs to run and how to deliver their result. `None`: a call.
    pub task: Option<fn(JsonObject) -> Result<TaskRun, InvalidArgument>>,
}

/// Who sees a tool and calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// The model; the app view does not show its results.
    Model,
    /// The model, and the app view shows its results (the tool links the view).
    ModelAndView,
    /// Only the app view's buttons: hidden from the model and from clients without views.
    ViewOnly,
}

/// The jobs a task runs: Dreamina images, or any catalogue model's one job.
pub(super) enum TaskJob {
    Images(GenerateArgs),
    Model(run_model::RunModelArgs),
}

/// A task's jobs, and how its result is delivered.
pub(super) type TaskRun = (TaskJob, DeliveryArgs);

/// Every tool: the router made of their routes, and each one's unit and argument rules by its
/// name.
pub(super) struct Tools {
    pub router: ToolRouter<RunComfyServer>,
    units: HashMap<Cow<'static, str>, &'static ToolUnit>,
    arguments: HashMap<Cow<'static, str>, ArgumentRules>,
}

impl Tools {
    fn new() -> Self {
        let mut router = ToolRouter::new();
        let mut units = HashMap::new();
        let mut arguments = HashMap::new();
        for unit in UNITS {
            let route = (unit.router)();
            for tool in route.list_all() {
                // The input schema as listed: the one the client sees is the one checked.
                arguments.insert(tool.name.clone(), ArgumentRules::new(tool.input_schema));
                units.insert(tool.name, unit);
            }
            router += route;
        }
        Self {
            router,
            units,
            arguments,
        }
    }

    /// Checks a call of the tool called `name` against its listed input schema, before any work
    /// (a name that is no tool's is the router's to answer).
    pub fn check(&self, name: &str, arguments: &mut JsonObject) -> Result<(), InvalidArgument> {
        match self.arguments.get(name) {
            Some(rules) => rules.check(arguments),
            None => Ok(()),
        }
    }

    /// The unit of the tool called `name`, if there is one.
    pub fn unit(&self, name: &str) -> Option<&'static ToolUnit> {
        self.units.get(name).copied()
    }

    /// Who sees the tool called `name` (`None`: no such tool).
    pub fn audience(&self, name: &str) -> Option<Audience> {
        self.unit(name).map(|unit| unit.audience)
    }

    /// Whether the results of the tool called `name` can carry inline images.
    pub fn carries_images(&self, name: &str) -> bool {
        self.unit(name).is_some_and(|unit| unit.images)
    }

    /// A call of `tool` read as a task's jobs, for a tool that runs as a task; `None` for every
    /// other tool.
    pub fn task(&self, tool: &str, arguments: JsonObject) -> Option<Result<TaskRun, InvalidArgument>> {
        self.unit(tool)?.task.map(|read| read(arguments))
    }
}

/// Every tool with its schemas, made once per process: the same for every server and session.
/// Making them is most of what start-up computes (about 2.9 M instructions, measured with
/// callgrind), none of which `initialize` needs: [`prepare`] makes them on a thread of its own
/// while the client's `initialize` is answered, and a first use before that waits for it.
pub(super) static TOOLS: LazyLock<Tools> = LazyLock::new(Tools::new);

/// Starts making [`TOOLS`] in the background (once per process).
pub(super) fn prepare() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        // Failing to start the thread only means the first use makes them.
        let _ = std::thread::Builder::new()
            .name("tool-schemas".into())
            .spawn(|| LazyLock::force(&TOOLS));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each unit names one tool, every tool has its unit, and what the view, the tasks path and
    /// the structured-content rule know of them comes from the units.
    #[test]
    fn every_tool_is_one_unit() {
        let tools = &*TOOLS;
        let listed = tools.router.list_all();
        assert_eq!(listed.len(), UNITS.len(), "one tool per unit");
        for unit in UNITS {
            assert_eq!((unit.router)().list_all().len(), 1, "a unit routes one tool");
        }
        let with = |pick: &dyn Fn(&ToolUnit) -> bool| -> Vec<String> {
            let mut names: Vec<String> = listed
                .iter()
                .filter(|t| pick(tools.unit(&t.name).expect("a unit for every tool")))
                .map(|t| t.name.to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            with(&|u| u.audience == Audience::ViewOnly),
            ["save_image", "upload_image"]
        );
        assert_eq!(
            with(&|u| u.audience == Audience::ModelAndView),
            [
                "generate_image",
                "generate_image_and_wait",
                "generate_variations",
                "get_result",
                "list_jobs"
            ]
        );
        assert_eq!(
            with(&|u| u.images),
            ["generate_image_and_wait", "get_result", "run_model"]
        );
        assert_eq!(
            with(&|u| u.task.is_some()),
            ["generate_image", "generate_image_and_wait", "run_model"]
        );
        assert!(tools.unit("no_such_tool").is_none());
        assert!(tools.task("list_jobs", JsonObject::new()).is_none());
    }
}
