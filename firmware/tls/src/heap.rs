//! mbedTLS's heap, counted: every block it allocates goes through a counting calloc/free
//! over the global allocator, so a board's budget for TLS can be enforced and measured
//! (over budget, mbedTLS gets NULL and fails with its ALLOC_FAILED: "TLS malloc failed").

use core::sync::atomic::{AtomicUsize, Ordering};

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Caps the bytes mbedTLS may hold at once (all sessions together); `None`: no cap.
pub fn set_heap_budget(budget: Option<usize>) {
    BUDGET.store(budget.unwrap_or(usize::MAX), Ordering::Release);
}

/// Bytes mbedTLS holds now (payload only, without the allocator's headers).
pub fn heap_in_use() -> usize {
    IN_USE.load(Ordering::Acquire)
}

/// The most bytes mbedTLS held at once since the start or the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    PEAK.load(Ordering::Acquire)
}

/// How many allocations the budget refused so far: a platform prints "TLS malloc failed"
/// when a failed handshake made this grow, whatever code mbedTLS turned the refusal into
/// (a refusal inside a certificate's signature check reads as 5035 UNTRUSTED_CERTIFICATE,
/// as in the chapter's example).
pub fn heap_refusals() -> usize {
    REFUSED.load(Ordering::Acquire)
}

/// Starts a new peak measurement from what is in use now.
pub fn reset_heap_peak() {
    PEAK.store(heap_in_use(), Ordering::Release);
}

/// Takes `n` bytes from the budget, or refuses.
pub(crate) fn reserve(n: usize) -> bool {
    let budget = BUDGET.load(Ordering::Acquire);
    let mut current = IN_USE.load(Ordering::Acquire);
    loop {
        let Some(next) = current.checked_add(n).filter(|next| *next <= budget) else {
            REFUSED.fetch_add(1, Ordering::AcqRel);
            return false;
        };
        match IN_USE.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                PEAK.fetch_max(next, Ordering::AcqRel);
                return true;
            }
            Err(seen) => current = seen,
        }
    }
}

pub(crate) fn release(n: usize) {
    IN_USE.fetch_sub(n, Ordering::AcqRel);
}
