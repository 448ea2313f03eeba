//! The tool surface, one file per tool: its arguments, its output type, its one renderer and its
//! handler side by side. This is the router: the only place that knows the tools by name.

pub mod cancel_request;
pub mod check_status;
pub mod describe_model;
pub mod generate_image;
pub mod generate_image_and_wait;
pub mod get_result;
pub mod list_jobs;
pub mod list_models;
pub mod run_model;
pub mod save_image;
pub mod upload_image;
pub mod vary_job;

use std::sync::{LazyLock, Once};

use rmcp::{handler::server::router::tool::ToolRouter, model::JsonObject};

use super::{args::InvalidArgument, RunComfyServer};
use generate_image::GenerateArgs;
use get_result::DeliveryArgs;

/// Every tool with its schemas, made once per process: the same for every server and session.
/// Making them is most of what start-up computes (about 2.9 M instructions, measured with
/// callgrind), none of which `initialize` needs: [`prepare`] makes them on a thread of its own
/// while the client's `initialize` is answered, and a first use before that waits for it.
pub(super) static ROUTER: LazyLock<ToolRouter<RunComfyServer>> = LazyLock::new(router);

/// Starts making [`ROUTER`] in the background (once per process).
pub(super) fn prepare() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        // Failing to start the thread only means the first use makes them.
        let _ = std::thread::Builder::new()
            .name("tool-schemas".into())
            .spawn(|| LazyLock::force(&ROUTER));
    });
}

fn router() -> ToolRouter<RunComfyServer> {
    RunComfyServer::generate_image_router()
        + RunComfyServer::check_status_router()
        + RunComfyServer::get_result_router()
        + RunComfyServer::cancel_request_router()
        + RunComfyServer::generate_image_and_wait_router()
        + RunComfyServer::list_jobs_router()
        + RunComfyServer::save_image_router()
        + RunComfyServer::upload_image_router()
        + RunComfyServer::vary_job_router()
        + RunComfyServer::list_models_router()
        + RunComfyServer::describe_model_router()
        + RunComfyServer::run_model_router()
}

/// The jobs a task runs: Dreamina images, or any catalogue model's one job.
pub(super) enum TaskJob {
    Images(GenerateArgs),
    Model(run_model::RunModelArgs),
}

/// For a tool a tasks-capable client may run as a task (the tools that start jobs worth
/// following): its arguments read as the jobs to run and how to deliver their result. `None` for
/// every other tool.
pub(super) fn task_arguments(
    tool: &str,
    arguments: JsonObject,
) -> Option<Result<(TaskJob, DeliveryArgs), InvalidArgument>> {
    match tool {
        "generate_image" => {
            Some(generate_image::task_arguments(arguments).map(|r| (TaskJob::Images(r), DeliveryArgs::default())))
        }
        "generate_image_and_wait" => {
            Some(generate_image_and_wait::task_arguments(arguments).map(|(g, d)| (TaskJob::Images(g), d)))
        }
        "run_model" => Some(run_model::task_arguments(arguments).map(|a| {
            let delivery = a.delivery.clone();
            (TaskJob::Model(a), delivery)
        })),
        _ => None,
    }
}
