//! A service as a node serves it: the object's version plus the SO chains that
//! let it answer calls of other versions, each behind a [`Dispatch`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::DispatchError;
use crate::rpc::dispatch::{Dispatch, Erased, Gate, Incoming};
use crate::rpc::stats::CallStats;
use crate::rpc::tls::Identity;
use crate::schema::{InterfaceSchema, MethodEncoding};
use crate::wire::{self, Status};

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
    stats: Arc<CallStats>,
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

/// Why a service did not start answering a call.
pub(crate) enum Refusal {
    /// No dispatcher for the call's version.
    VersionUnsupported,
    /// The service is quiescing for an upgrade.
    Upgrading,
}

impl Refusal {
    /// The reply status that tells the caller.
    pub(crate) fn status(&self) -> Status {
        match self {
            Refusal::VersionUnsupported => Status::VersionUnsupported,
            Refusal::Upgrading => Status::Upgrading,
        }
    }
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
            wire::valid_service_name(&schema.service),
            "service names are 1 to {} bytes",
            wire::MAX_SERVICE_NAME
        );
        let mut versions = BTreeMap::new();
        versions.insert(
            schema.version,
            Entry {
                dispatch: Arc::new(object),
                stats: Arc::default(),
            },
        );
        Service {
            name: service_name(schema),
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
                stats: Arc::default(),
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
        self.versions.get(&version).map_or(0, |e| e.stats.calls())
    }

    /// What the calls of `version` did so far: how many, how many failed,
    /// how long they took.
    pub fn stats(&self, version: u32) -> Option<Arc<CallStats>> {
        self.versions.get(&version).map(|e| e.stats.clone())
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
        entry.stats.admitted();
        call.stats = Some(entry.stats.clone());
        entry.dispatch.clone().answer(call);
        Ok(())
    }

    /// Stops admitting calls (they get a retryable `Upgrading` reply) and
    /// waits up to `timeout` for the calls in flight to finish. Returns
    /// whether they did; either way the service stays closed until
    /// [`Service::reopen`].
    pub async fn quiesce(&self, timeout: Duration) -> bool {
        self.gate.close(timeout).await
    }

    /// Admits calls again after [`Service::quiesce`].
    pub fn reopen(&self) {
        self.gate.open();
    }

    /// The same service, asking `guard` before every call whether its
    /// caller may make it ([`Guard`]); a refusal answers the call with
    /// `Forbidden` and the guard's reason, and the call does not run.
    pub fn guarded(self, guard: Guard) -> Service {
        let versions = self
            .versions
            .into_iter()
            .map(|(version, entry)| {
                let guarded = Guarded {
                    inner: entry.dispatch,
                    version,
                    guard: guard.clone(),
                };
                let entry = Entry {
                    dispatch: Arc::new(guarded),
                    stats: entry.stats,
                };
                (version, entry)
            })
            .collect();
        Service { versions, ..self }
    }

    /// The interface and the methods' encodings of the dispatcher that
    /// answers `version`, if one does.
    pub fn describe(
        &self,
        version: u32,
    ) -> Option<(&'static InterfaceSchema, &'static [MethodEncoding])> {
        let entry = self.versions.get(&version)?;
        Some((
            entry.dispatch.interface(),
            entry.dispatch.method_encodings(),
        ))
    }

    /// Answers a call in the caller's task, without a connection: the
    /// encoded reply, or why the dispatcher did not give one (an SO's
    /// `Disallowed` among them). `None` when no dispatcher answers
    /// `version`. The service's gate and counters are left alone: this is
    /// for tests and tools that drive one service ([`crate::conformance`]
    /// does), not a way around an upgrade's quiescence.
    pub async fn call_local(
        &self,
        version: u32,
        method: u16,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>, DispatchError>> {
        let entry = self.versions.get(&version)?;
        Some(entry.dispatch.local(method, payload).await)
    }

    /// Calls being answered right now.
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }
}

/// The service name of a dispatcher's schema, for the life of the program.
fn service_name(schema: &'static crate::schema::InterfaceSchema) -> &'static str {
    match &schema.service {
        std::borrow::Cow::Borrowed(name) => name,
        std::borrow::Cow::Owned(name) => name.as_str(),
    }
}

/// Decides whether a call may run: given who makes it (from the
/// connection's client certificate, `None` without TLS), the call's version
/// and method and its encoded arguments, `Ok` or the reason it may not.
pub type Guard =
    Arc<dyn Fn(Option<&Identity>, u32, u16, &[u8]) -> Result<(), String> + Send + Sync>;

/// A version's dispatcher behind a [`Guard`].
struct Guarded {
    inner: Arc<dyn Erased>,
    version: u32,
    guard: Guard,
}

impl Dispatch for Guarded {
    fn schema(&self) -> &'static InterfaceSchema {
        self.inner.interface()
    }

    fn encodings(&self) -> &'static [MethodEncoding] {
        self.inner.method_encodings()
    }

    async fn call<'a>(
        &'a self,
        method: u16,
        payload: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> Result<(), DispatchError> {
        let caller = crate::rpc::tls::caller();
        (self.guard)(caller.as_deref(), self.version, method, payload)
            .map_err(DispatchError::Forbidden)?;
        out.extend_from_slice(&self.inner.local(method, payload).await?);
        Ok(())
    }
}
