//! Small synchronisation helpers every layer uses: a lock that survives a
//! poisoned mutex, and blocking work moved off the runtime's threads.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also when a panicking holder poisoned it: every value
/// upshift guards stays consistent between statements, so the data is usable.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs blocking work (file writes, hashing, store commits) off the runtime's
/// threads, so the process serves meanwhile. A panic in it is the caller's panic.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels the work, and then
            // nothing waits for this answer.
            Err(_) => std::future::pending().await,
        },
    }
}
