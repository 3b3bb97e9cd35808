//! Lowering the priority of compaction's thread (`strata-compact`): its
//! CPU priority (nice value, `wal_compaction_nice`) and its I/O priority
//! (the idle class), so that under a load that saturates the machine the
//! append path and fetches come first.
//!
//! Neither starves compaction: the scheduler gives every runnable thread
//! a share of the CPU in proportion to its weight (nice 10 weighs about a
//! tenth of nice 0, so compaction still gets ~1/(10 n + 1) of a core
//! against n busy threads of the broker or its clients), and the block
//! layer's `mq-deadline` and `bfq` schedulers serve a request of the idle
//! I/O class at the latest after a few seconds of waiting behind others
//! (elsewhere the class is ignored). Both are per thread on Linux.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tracing::warn;

/// The nice value compaction's thread runs at (`wal_compaction_nice`).
static NICE: AtomicI32 = AtomicI32::new(10);

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;

/// Sets the nice value [`lower`] gives compaction's thread.
pub fn set_nice(nice: u8) {
    NICE.store(i32::from(nice.min(19)), Ordering::Relaxed);
}

/// Lowers the calling thread's CPU priority to the nice value set and
/// its I/O priority to the idle class (the compaction thread's start hook). A refusal is logged, and the thread goes on at
/// the priority it has.
pub fn lower() {
    let nice = NICE.load(Ordering::Relaxed);
    let ioprio = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
    // SAFETY: gettid, setpriority and ioprio_set take and return plain
    // integers and touch no memory of ours; they act on this thread only.
    let (set_nice, set_io) = unsafe {
        let tid = libc::gettid();
        let id = libc::id_t::try_from(tid).unwrap_or(0);
        (
            libc::setpriority(libc::PRIO_PROCESS, id, nice),
            libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, ioprio),
        )
    };
    if set_nice != 0 || set_io != 0 {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            warn!(
                nice,
                error = %std::io::Error::last_os_error(),
                "cannot lower the compaction thread's priority; it runs at the broker's"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let rest = stat.rsplit(')').next().unwrap_or_default();
        // Field 19 of stat (nice) is the 17th after the command name.
        rest.split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = own_nice();
        let lowered = std::thread::spawn(|| {
            lower();
            own_nice()
        })
        .join()
        .unwrap_or(i64::MIN);
        assert_eq!(lowered, i64::from(NICE.load(Ordering::Relaxed)).max(before));
        assert_eq!(own_nice(), before);
    }
}
