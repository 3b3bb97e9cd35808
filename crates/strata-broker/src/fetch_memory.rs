//! The broker-wide budget for record bytes held in fetch answers that are
//! not yet sent.
//!
//! A fetch answer's records stay in memory from the read until the socket
//! has taken them; a slow consumer asking for 50 MB holds 50 MB for as long
//! as it takes to read. Each answer holds its record bytes' worth of this
//! budget until it is written (the [`MemoryHold`] travels with the
//! [`crate::outgoing::Outgoing`]). When the budget is short, fetches are
//! answered smaller (a read never asks for more than is free); when it is
//! spent, they wait for answers to drain. Nothing waits while holding part
//! of the budget, so waiting fetches cannot block each other.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

/// The budget of bytes fetch answers may hold.
#[derive(Debug)]
pub struct FetchMemory {
    free: Arc<Semaphore>,
    total: usize,
}

/// Budget held by one answer; given back when dropped.
#[derive(Debug)]
pub struct MemoryHold {
    _permit: Option<OwnedSemaphorePermit>,
}

impl FetchMemory {
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        FetchMemory {
            free: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held by answers not yet sent.
    pub fn held(&self) -> usize {
        self.total.saturating_sub(self.free.available_permits())
    }

    /// Bytes a read may take now; waits while none are free.
    pub async fn wait_for_room(&self) -> usize {
        loop {
            let free = self.free.available_permits();
            if free > 0 {
                return free;
            }
            metrics::count_fetch_memory_wait();
            // One permit frees up when any answer drains; give it straight back.
            if self.free.acquire().await.is_err() {
                return self.total;
            }
        }
    }

    /// Holds `bytes` if they are free now.
    pub fn try_hold(&self, bytes: usize) -> Option<MemoryHold> {
        if bytes == 0 {
            return Some(MemoryHold { _permit: None });
        }
        let count = u32::try_from(bytes).ok()?;
        let permit = Arc::clone(&self.free).try_acquire_many_owned(count).ok()?;
        Some(MemoryHold {
            _permit: Some(permit),
        })
    }

    /// Holds `bytes` (at most the whole budget), waiting until they are free.
    /// Returns how many bytes are held.
    pub async fn hold(&self, bytes: usize) -> (MemoryHold, usize) {
        let bytes = bytes.min(self.total).min(u32::MAX as usize);
        if bytes == 0 {
            return (MemoryHold { _permit: None }, 0);
        }
        metrics::count_fetch_memory_wait();
        let count = u32::try_from(bytes).unwrap_or(u32::MAX);
        match Arc::clone(&self.free).acquire_many_owned(count).await {
            Ok(permit) => (
                MemoryHold {
                    _permit: Some(permit),
                },
                bytes,
            ),
            // The semaphore is never closed; if it were, hold nothing.
            Err(_) => (MemoryHold { _permit: None }, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_are_given_back_when_dropped() {
        let memory = FetchMemory::new(1000);
        let a = memory.try_hold(600);
        assert!(a.is_some());
        assert_eq!(memory.held(), 600);
        assert!(memory.try_hold(600).is_none(), "only 400 are free");
        assert_eq!(memory.wait_for_room().await, 400);
        drop(a);
        assert_eq!(memory.held(), 0);
        let (_b, held) = memory.hold(5000).await;
        assert_eq!(held, 1000, "never more than the whole budget");
    }

    #[tokio::test]
    async fn a_fetch_waits_until_an_answer_drains() {
        let memory = Arc::new(FetchMemory::new(100));
        let all = memory.try_hold(100);
        let waiter = {
            let memory = Arc::clone(&memory);
            tokio::spawn(async move { memory.wait_for_room().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(all);
        let room = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(matches!(room, Ok(Ok(100))));
    }
}
