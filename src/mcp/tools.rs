//! The tool surface: names, titles, descriptions, annotations and schemas, and the thin handlers
//! (parse → one call → render). The descriptions teach a model the submit → poll → result flow.

use rmcp::{
    model::{CallToolResult, JsonObject, RequestMetaObject},
    tool, tool_router, Peer, RoleServer,
};
use tokio_util::sync::CancellationToken;

use super::{
    args::{self, JobArgs},
    delivery::ResultArgs,
    list::{self, JobList, ListJobsArgs},
    progress::ProgressReporter,
    render::{self, Cancellation, JobResult, JobState, Submitted},
    schema::{output_schema_for, schema_for},
    wait::{self, WaitArgs},
    RunComfyServer,
};
use crate::{dreamina::ImageRequest, journal::JobUpdate};

#[tool_router(vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image",
        title = "Generate image (Dreamina 4.0)",
        description = "Start a ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image job on RunComfy and return its request_id at once; the image itself takes from several seconds to a few minutes. Then call check_status with the request_id every few seconds until status is succeeded, and call get_result for the image URLs. Each call starts a new paid job: do not call it again for the same image just because it is still running.",
        input_schema = schema_for::<ImageRequest>(),
        output_schema = output_schema_for::<Submitted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_image(&self, arguments: JsonObject) -> CallToolResult {
        let request: ImageRequest = match args::parse(arguments) {
            Ok(request) => request,
            Err(e) => return render::invalid_argument(&e),
        };
        let wire = request.to_wire();
        match (self.options.journal)
            .track_submit(&request, self.client.model(), self.client.submit(&wire))
            .await
        {
            Ok(id) => Submitted::new(&id, &request).render(),
            Err(e) => render::submit_error(&e),
        }
    }

    #[tool(
        name = "check_status",
        title = "Check job status",
        description = "Read the status of a job started with generate_image: in_queue (with its queue position), in_progress, succeeded, failed or cancelled. Poll it every few seconds; once it says succeeded, call get_result. Does not change the job.",
        input_schema = schema_for::<JobArgs>(),
        output_schema = output_schema_for::<JobState>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn check_status(&self, arguments: JsonObject) -> CallToolResult {
        let JobArgs { request_id } = match args::parse(arguments) {
            Ok(a) => a,
            Err(e) => return render::invalid_argument(&e),
        };
        match self
            .options
            .journal
            .track(&request_id, self.client.status(&request_id), JobUpdate::from_status)
            .await
        {
            Ok(answer) => JobState::new(&request_id, &answer).render(),
            Err(e) => render::api_error(&request_id, &e),
        }
    }

    #[tool(
        name = "get_result",
        title = "Get job result",
        description = "Get the outcome of a job started with generate_image: once it has succeeded, the image URLs with their size and type, small inline previews, a link per image, and the saved file paths when the server saves images; the current status while it is still queued or running (call again later); or RunComfy's error if it failed. Does not change the job.",
        input_schema = schema_for::<ResultArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_result(&self, arguments: JsonObject, peer: Peer<RoleServer>) -> CallToolResult {
        let ResultArgs { request_id, delivery } = match args::parse(arguments) {
            Ok(a) => a,
            Err(e) => return render::invalid_argument(&e),
        };
        match self
            .options
            .journal
            .track(&request_id, self.client.result(&request_id), JobUpdate::from_result)
            .await
        {
            Ok(answer) => match JobResult::new(&request_id, answer) {
                Ok(result) => self.deliver(result, &delivery, &peer).await,
                Err(failed) => failed,
            },
            Err(e) => render::api_error(&request_id, &e),
        }
    }

    #[tool(
        name = "cancel_request",
        title = "Cancel job",
        description = "Cancel a job started with generate_image. Only a job that is still in_queue can be cancelled; a job already in_progress runs to the end and the answer says not_cancellable. Use it when the user no longer wants the image.",
        input_schema = schema_for::<JobArgs>(),
        output_schema = output_schema_for::<Cancellation>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn cancel_request(&self, arguments: JsonObject) -> CallToolResult {
        let JobArgs { request_id } = match args::parse(arguments) {
            Ok(a) => a,
            Err(e) => return render::invalid_argument(&e),
        };
        match self
            .options
            .journal
            .track(&request_id, self.client.cancel(&request_id), JobUpdate::from_cancel)
            .await
        {
            Ok(answer) => Cancellation::new(&request_id, &answer).render(),
            Err(e) => render::api_error(&request_id, &e),
        }
    }

    #[tool(
        name = "generate_image_and_wait",
        title = "Generate image and wait (Dreamina 4.0)",
        description = "Start a Dreamina 4.0 text-to-image job on RunComfy and wait for it, reporting progress, then return the image URLs as get_result does. If the image is not ready within max_wait_seconds (default 40 s), it returns the request_id and status instead, not an error: then call get_result with that request_id a few seconds later. Do not call this tool again for the same image; that starts a new paid job. Cancelling the call cancels the job if it is still queued.",
        input_schema = schema_for::<WaitArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_image_and_wait(
        &self,
        arguments: JsonObject,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let args: WaitArgs = match args::parse(arguments) {
            Ok(a) => a,
            Err(e) => return render::invalid_argument(&e),
        };
        let mut progress = meta
            .get_progress_token()
            .map(|token| ProgressReporter::new(peer.clone(), token));
        let max_wait = self.wait_for(args.max_wait_seconds);
        let outcome = wait::submit_and_wait(
            &self.client,
            &self.options.journal,
            &args.request,
            max_wait,
            self.options.backoff,
            &cancel,
            |elapsed, message| {
                if let Some(progress) = progress.as_mut() {
                    progress.report(elapsed, message);
                }
            },
        )
        .await;
        if let Some(progress) = progress {
            progress.finish().await;
        }
        match outcome {
            Ok(result) => self.deliver(result, &args.delivery, &peer).await,
            Err(error) => error,
        }
    }

    #[tool(
        name = "list_jobs",
        title = "List recent jobs",
        description = "List the image jobs recorded on this machine, newest first, with status, shortened prompt, size, submission time, and image URLs or saved files once known. Use it to find a request_id that was lost (a timeout, a new conversation, a restart) instead of submitting a new paid job; then call check_status or get_result with it. Statuses are as last seen here. Filter by status; limit defaults to 10. Reads only this machine's journal: does not contact RunComfy.",
        input_schema = schema_for::<ListJobsArgs>(),
        output_schema = output_schema_for::<JobList>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_jobs(&self, arguments: JsonObject) -> CallToolResult {
        let query = match args::parse::<ListJobsArgs>(arguments) {
            Ok(a) => a.query(),
            Err(e) => return render::invalid_argument(&e),
        };
        match self.options.journal.list(query).await {
            Ok(jobs) => JobList::new(jobs).render(),
            Err(reason) => list::unavailable(&reason),
        }
    }
}
