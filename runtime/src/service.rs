//! A service as a node serves it: the object's version plus the SO chains that
//! let it answer calls of other versions, each behind a [`Dispatch`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::DispatchError;
use crate::schema::InterfaceSchema;
use crate::server::Incoming;

/// Serves the calls of one interface version: decodes the arguments, calls
/// the service object or SO chain, encodes the result.
///
/// The interface macro implements this for `vN::Dispatcher<I>`; the server
/// holds one per version a node answers.
pub trait Dispatch: Send + Sync + 'static {
    /// The version this dispatcher answers.
    fn schema(&self) -> &'static InterfaceSchema;

    /// Serves method `method` with postcard-encoded `payload`, appending the
    /// encoded return value to `out`.
    fn call<'a>(
        &'a self,
        method: u16,
        payload: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<(), DispatchError>> + Send + 'a;
}

/// A [`Dispatch`] behind a pointer: the server spawns each call as a task of
/// the concrete dispatcher's type, so no future is boxed per call.
trait Erased: Send + Sync + 'static {
    fn answer(self: Arc<Self>, call: Incoming);
}

impl<D: Dispatch> Erased for D {
    fn answer(self: Arc<Self>, call: Incoming) {
        tokio::spawn(crate::server::answer(self, call));
    }
}

/// How a node answers calls of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// The call's version is the node's: the service object answers.
    Object,
    /// An older call, answered through this many chained past SOs.
    PastSo(u32),
    /// A newer call, answered through this many chained future SOs.
    FutureSo(u32),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Object => f.write_str("object"),
            Route::PastSo(1) => f.write_str("past SO"),
            Route::PastSo(n) => write!(f, "{n} chained past SOs"),
            Route::FutureSo(1) => f.write_str("future SO"),
            Route::FutureSo(n) => write!(f, "{n} chained future SOs"),
        }
    }
}

struct Entry {
    dispatch: Arc<dyn Erased>,
    served: AtomicU64,
}

/// One service at one node version, with the versions it answers.
///
/// Built by the generated `vN::service(object)` (the object plus its full past
/// SO chain) or by hand with [`Service::new`] and [`Service::with_version`].
pub struct Service {
    name: &'static str,
    version: u32,
    versions: BTreeMap<u32, Entry>,
    gate: Arc<Gate>,
}

/// Counts the calls a service is running, and closes it for a version switch.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

impl Gate {
    /// Admits a call unless the gate is closed.
    fn enter(&self) -> bool {
        // SeqCst pairs with `close`: either the call sees the gate closed, or
        // `close` sees the call in flight and waits for it.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.leave();
            return false;
        }
        true
    }

    /// A call admitted by `enter` has been answered.
    pub(crate) fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Why a service did not start answering a call.
pub(crate) enum Refusal {
    /// No dispatcher for the call's version.
    VersionUnsupported,
    /// The service is quiescing for an upgrade.
    Upgrading,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("answers", &self.versions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Service {
    /// A service whose object answers `object`'s version.
    ///
    /// # Panics
    ///
    /// If the service name is empty or longer than 255 bytes, which the
    /// interface macro rules out at compile time.
    pub fn new(object: impl Dispatch) -> Self {
        let schema = object.schema();
        assert!(
            (1..=255).contains(&schema.service.len()),
            "service names are 1 to 255 bytes"
        );
        let mut versions = BTreeMap::new();
        versions.insert(
            schema.version,
            Entry {
                dispatch: Arc::new(object),
                served: AtomicU64::new(0),
            },
        );
        Service {
            name: schema.service,
            version: schema.version,
            versions,
            gate: Arc::default(),
        }
    }

    /// Adds a dispatcher (an SO chain) that answers another version.
    ///
    /// # Panics
    ///
    /// If the dispatcher belongs to another service or to the node's own
    /// version: both are wiring mistakes in the program, not runtime input.
    pub fn with_version(mut self, chain: impl Dispatch) -> Self {
        let schema = chain.schema();
        assert_eq!(schema.service, self.name, "an SO chain of another service");
        assert_ne!(
            schema.version, self.version,
            "the object already answers v{}",
            self.version
        );
        self.versions.insert(
            schema.version,
            Entry {
                dispatch: Arc::new(chain),
                served: AtomicU64::new(0),
            },
        );
        self
    }

    /// Stops answering `version`, for example once no caller uses it any more.
    /// The node's own version cannot be removed.
    pub fn without_version(mut self, version: u32) -> Self {
        if version != self.version {
            self.versions.remove(&version);
        }
        self
    }

    /// The service name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The version of the service object: the node's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Every version this service answers, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.versions.keys().copied()
    }

    /// How a call of `version` is answered, if it is.
    pub fn route(&self, version: u32) -> Option<Route> {
        self.versions.contains_key(&version).then(|| {
            if version == self.version {
                Route::Object
            } else if version < self.version {
                Route::PastSo(self.version - version)
            } else {
                Route::FutureSo(version - self.version)
            }
        })
    }

    /// Calls of `version` answered so far (including those that failed).
    pub fn served(&self, version: u32) -> u64 {
        self.versions
            .get(&version)
            .map_or(0, |e| e.served.load(Ordering::Relaxed))
    }

    /// Starts answering `call` with the dispatcher of `version`, counting
    /// it; hands the call back with the reason when it cannot.
    pub(crate) fn answer(
        &self,
        version: u32,
        mut call: Incoming,
    ) -> Result<(), (Incoming, Refusal)> {
        let Some(entry) = self.versions.get(&version) else {
            return Err((call, Refusal::VersionUnsupported));
        };
        if !self.gate.enter() {
            return Err((call, Refusal::Upgrading));
        }
        call.gate = Some(self.gate.clone());
        entry.served.fetch_add(1, Ordering::Relaxed);
        entry.dispatch.clone().answer(call);
        Ok(())
    }

    /// Stops admitting calls (they get a retryable `Upgrading` reply) and
    /// waits up to `timeout` for the calls in flight to finish. Returns
    /// whether they did; either way the service stays closed until
    /// [`Service::reopen`].
    pub async fn quiesce(&self, timeout: Duration) -> bool {
        self.gate.closed.store(true, Ordering::SeqCst);
        let drained = async {
            loop {
                let idle = self.gate.idle.notified();
                if self.gate.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(timeout, drained).await.is_ok()
    }

    /// Admits calls again after [`Service::quiesce`].
    pub fn reopen(&self) {
        self.gate.closed.store(false, Ordering::SeqCst);
    }

    /// Calls being answered right now.
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight.load(Ordering::SeqCst)
    }
}
