//! Media in and out. In: [`inputs`] turns the reference images of a request (URLs, files in
//! allowed directories, data URIs) into what RunComfy is sent. Out: what a finished job's output
//! files become for the person and the model — downloaded once (bounded), saved to the output
//! directory, previewed inline (images only: a video or audio file is saved as it came, never
//! decoded), described.
//!
//! [`collect`] is the one entry point; the tools render its [`Collected`] into MCP content. It
//! never fails: a download, preview or save that goes wrong leaves the URL in the result and a
//! note saying what failed, because the job itself succeeded and was paid for.
//!
//! A result is bounded however many outputs the upstream lists: at most [`MAX_PROCESSED`] are
//! downloaded, previewed or saved, at most [`MAX_LISTED`] (within [`MAX_LISTED_URL_BYTES`]) are
//! listed at all, and the rest are counted ([`listing`]).
//!
//! Layout: `output_urls` sorts a result's URLs by kind, `listing_bound` bounds what is listed,
//! `fetch` gets them: [`download`] streams a URL into a spool file within a timeout and a size
//! cap, from where [`address`] allows, [`preview`] decodes (within [`pixels`]' bounds) and scales
//! down, [`save`] owns the output directory and file names; `inline_budget` shares a result's
//! inline bytes among its images; `report` is what it all became, and `notes` the
//! result-wide remarks (`mcp/` words them); [`settings`] the flags; [`uploads`] keeps the images
//! a person uploads from the app view, and [`host_files`] reads the files a host (ChatGPT) hands
//! a tool.

pub mod address;
pub(crate) mod download;
mod fetch;
pub(crate) mod host_files;
mod inline_budget;
pub mod inputs;
mod listing_bound;
mod notes;
pub mod on_demand;
mod output_urls;
pub(crate) mod pixels;
pub mod preview;
mod report;
pub mod save;
pub(crate) mod settings;
mod streamed;
pub(crate) mod uploads;

pub use address::AddressPolicy;
pub use download::Downloader;
pub(crate) use fetch::collect_all;
pub use fetch::{collect, Request, MAX_PROCESSED};
use fetch::{DECODES, PROCESS_DOWNLOADS};
pub use listing_bound::MAX_LISTED;
pub(crate) use listing_bound::{listing, Listing, ListingRoom};
pub(crate) use notes::MediaNote;
pub use output_urls::OutputUrls;
pub use report::OutputReport;
pub(crate) use report::{Collected, InlineForm, InlineImage, InlineReport, OutputKind};
pub use save::OutputDir;
pub(crate) use settings::MediaArgs;
pub use settings::MediaOptions;
