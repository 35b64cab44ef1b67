//! Small synchronisation helpers every layer uses: a lock that survives a
//! poisoned mutex, waiting for a condition a `Notify` signals, and blocking
//! work moved off the runtime's threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

/// Locks `mutex`, also when a panicking holder poisoned it: every value
/// upshift guards stays consistent between statements, so the data is usable.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `rwlock`, also when a panicking writer poisoned it (as [`lock`]).
pub fn read<T: ?Sized>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(|e| e.into_inner())
}

/// Writes `rwlock`, also when a panicking writer poisoned it (as [`lock`]).
pub fn write<T: ?Sized>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(|e| e.into_inner())
}

static INLINE: AtomicBool = AtomicBool::new(false);

/// Makes this process run its blocking work — transforms and store commits
/// ([`blocking`]), the coordinator's UDB writes, journal syncs — inline, on
/// the thread that asks for it, from now on. For a simulation: its one
/// thread then decides the order of everything, so a seed replays exactly;
/// a real process would stall its runtime on every sync.
pub fn inline_blocking() {
    INLINE.store(true, Ordering::SeqCst);
}

/// Whether [`inline_blocking`] was called.
pub(crate) fn inline() -> bool {
    INLINE.load(Ordering::Relaxed)
}

/// Runs blocking work (file writes, hashing, store commits) off the runtime's
/// threads, so the process serves meanwhile (inline after
/// [`inline_blocking`]). A panic in it is the caller's panic.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    if inline() {
        return work();
    }
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

/// Waits until `ready()` holds, woken by `notify` (`notify_waiters` after a
/// change that may make it hold). A condition that holds already costs one
/// check and no registration.
pub async fn until(notify: &Notify, mut ready: impl FnMut() -> bool) {
    if ready() {
        return;
    }
    loop {
        // Registered before the check, so a change in between wakes it.
        let changed = notify.notified();
        if ready() {
            return;
        }
        changed.await;
    }
}

/// What a caught panic said: its message when it has one (a `&str` or a
/// `String`, as `panic!` makes them), else that it had none.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
