//! The tokio runtime each command runs on, chosen per command rather than one for all.
//!
//! The stdio server talks to one client over one pipe: a current-thread runtime starts faster,
//! holds one thread instead of one per core, and answers a message without handing it between
//! threads (a futex wake-up and an eventfd write each time). The HTTP server runs on the
//! multi-thread runtime with as many workers as `--worker-threads` (one per core and at least two
//! by default: see its help), `simulate` with one per core, and the shell commands (`generate`,
//! `usage`) on one thread, for the stdio server's reasons.

use tokio::runtime::{Builder, Runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Everything on the thread that called `block_on` (plus the blocking pool, used on demand).
    CurrentThread,
    /// One worker per core.
    MultiThread,
    /// This many workers; 0: one per core, and at least two, so that one busy worker never
    /// stalls every request.
    Workers(usize),
}

pub fn build(flavor: Flavor) -> std::io::Result<Runtime> {
    let mut builder = match flavor {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => Builder::new_multi_thread(),
        Flavor::Workers(n) => {
            let n = match n {
                0 => std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2)),
                n => n,
            };
            let mut builder = Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    builder.enable_all().build()
}
