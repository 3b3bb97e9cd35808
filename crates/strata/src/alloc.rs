//! The process allocator: the system allocator, except that very large
//! allocations are reserved lazily (`MAP_NORESERVE`).
//!
//! Why: the Kafka codec pre-allocates arrays to the element count a request
//! claims before reading the elements. A hostile count (2^31 elements) asks
//! for terabytes; the system allocator refuses, and a refused allocation
//! aborts the process. Reserved lazily, such an allocation costs only address
//! space — pages are touched as elements are actually decoded, which the
//! request size limit bounds — and decoding then fails cleanly on the missing
//! bytes. Allocations below the threshold take the normal path.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at or above this size are reserved lazily.
const LAZY_THRESHOLD: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct LazyLargeAllocator;

fn lazy(layout: Layout) -> bool {
    layout.size() >= LAZY_THRESHOLD && layout.align() <= PAGE
}

// SAFETY: every pointer handed out is either from `System` (and returned to
// it) or from an anonymous private mapping of `layout.size()` bytes (and
// unmapped with that size); `lazy` decides which, from the layout alone, the
// same way on allocation and deallocation.
unsafe impl GlobalAlloc for LazyLargeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !lazy(layout) {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous mapping with no address hint has no preconditions.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !lazy(layout) {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: anonymous mappings are zero-filled.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if lazy(layout) {
            // SAFETY: `ptr` came from `mmap` with this size (see `alloc`).
            unsafe {
                libc::munmap(ptr.cast(), layout.size());
            }
        } else {
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}
