//! The tokio runtime each command runs on, chosen per command rather than one for all.
//!
//! The stdio server talks to one client over one pipe: a current-thread runtime starts faster,
//! holds one thread instead of one per core, and answers a message without handing it between
//! threads (a futex wake-up and an eventfd write each time). The HTTP server and the CLI keep the
//! multi-thread runtime: many clients at once can use every core.

use tokio::runtime::{Builder, Runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Everything on the thread that called `block_on` (plus the blocking pool, used on demand).
    CurrentThread,
    /// One worker per core.
    MultiThread,
}

pub fn build(flavor: Flavor) -> std::io::Result<Runtime> {
    let mut builder = match flavor {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}
