//! Wall-clock time as the coordinator and schedules read it, behind a seam
//! so rollout rules can be tested at any moment of the day in milliseconds.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds, from the system clock (0 before 1970), or
/// the time [`freeze`] holds on this thread.
pub fn now_ms() -> u64 {
    if let Some(frozen) = FROZEN.with(Cell::get) {
        return frozen;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

thread_local! {
    static FROZEN: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Holds [`now_ms`] at `ms` on this thread until the guard is dropped, so
/// code that reads the time (an object computing an expiry) answers the
/// same on every run: the conformance tests replay one call sequence
/// against several versions and compare the replies. Only code on this
/// thread sees it (a current-thread runtime's tasks do).
pub fn freeze(ms: u64) -> Frozen {
    let before = FROZEN.with(|f| f.replace(Some(ms)));
    Frozen {
        before,
        _thread: std::marker::PhantomData,
    }
}

/// The guard of [`freeze`]; dropping it gives the thread back the time it
/// had before.
#[derive(Debug)]
pub struct Frozen {
    before: Option<u64>,
    // The time belongs to one thread: the guard must not leave it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Frozen {
    /// Moves the frozen time to `ms`.
    pub fn set(&self, ms: u64) {
        FROZEN.with(|f| f.set(Some(ms)));
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        FROZEN.with(|f| f.set(self.before));
    }
}

/// A source of Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// A clock that moves only when told: for tests of time-based rules.
/// Clones share the time.
#[derive(Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now_ms()).finish()
    }
}

impl ManualClock {
    /// A clock that reads `ms`.
    pub fn at(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
