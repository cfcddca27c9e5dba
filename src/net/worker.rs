//! Which worker thread the caller runs on, for resources kept one per worker (the upstream pools).
//! The worker threads themselves are started by `serve::workers`.

use std::cell::Cell;

thread_local! {
    /// This thread's worker number (0 for the main thread and any thread that is not a worker).
    static WORKER_INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The calling thread's worker number.
pub fn current_index() -> usize {
    WORKER_INDEX.with(Cell::get)
}

/// Marks the calling thread as worker `index`; called once by each worker thread as it starts.
pub fn set_current_index(index: usize) {
    WORKER_INDEX.with(|w| w.set(index));
}
