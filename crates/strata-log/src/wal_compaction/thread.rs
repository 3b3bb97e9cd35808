//! Compaction's own thread: the reading, checking and writing of a run
//! (and of a key compaction pass) happen on a `strata-compact` thread,
//! which the broker starts at a low CPU and I/O priority
//! ([`crate::StoreOptions::compaction_thread_start`]), while the sealing
//! thread, at the normal priority, keeps every step that takes a
//! partition's lock (finding the live batches, pointing partitions at the
//! copies, sealing). A thread the scheduler holds back thus never holds a
//! lock the append path or a fetch waits for.

use std::path::PathBuf;

use crate::seal::Sealer;
use crate::LogError;

/// The name of compaction's thread.
pub const THREAD_NAME: &str = "strata-compact";

impl Sealer {
    /// Runs `work` on a compaction thread (its start hook first) and waits
    /// for its result. A panic there goes on here.
    pub(crate) fn on_compaction_thread<T: Send>(
        &self,
        work: impl FnOnce() -> Result<T, LogError> + Send,
    ) -> Result<T, LogError> {
        let start = self.thread_start;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(THREAD_NAME.to_string())
                .spawn_scoped(scope, move || {
                    if let Some(start) = start {
                        start();
                    }
                    work()
                })
                .map_err(|source| LogError::Io {
                    path: PathBuf::from(THREAD_NAME),
                    source,
                })?;
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}
