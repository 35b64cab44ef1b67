//! Shadow verification before an in-process upgrade: the next version
//! runs beside the current one on a copy of its state, every call is
//! mirrored to it, and the upgrade goes on only if the shadow answered
//! every call of the current version (and older) as the current version
//! did.
//!
//! While shadowing, calls are answered one at a time: the shadow must see
//! them in the order the current version applied them, or its state would
//! drift for reasons that are not the new version's. The current version
//! answers first, and its reply is what the caller gets; the shadow runs in
//! a task of its own, so a panic there is a divergence and never a failed
//! call. A call the current version refused or could not decode is not
//! mirrored (it did not happen). Calls of a newer version (through the
//! future SO) are mirrored, so the shadow's state follows, but not
//! compared: a future SO may answer what its object never would.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use upshift_schema::shape::Shape;

use super::stage::Running;
use super::{Current, Node, NodeError};
use crate::error::DispatchError;
use crate::rpc::{Dispatch, Service};
use crate::schema::{self, InterfaceSchema, MethodEncoding};
use crate::sync::lock;

/// How long an upgrade shadows before it switches, set on the node
/// ([`NodeConfig::shadow`](super::NodeConfig::shadow)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowPolicy {
    /// How long calls are mirrored to the shadow.
    pub soak: Duration,
    /// How many calls must have been compared by then; fewer fails the
    /// upgrade (too little traffic to tell).
    pub min_calls: u64,
}

/// What one shadowing saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowReport {
    /// The version shadowed.
    pub version: u32,
    /// Calls answered by both and compared.
    pub compared: u64,
    /// Calls mirrored but not compared (of a newer version).
    pub mirrored_only: u64,
    /// Calls whose answers differed, the shadow's failures included.
    pub diverged: u64,
    /// The first of them, as a person reads it.
    pub first: Option<String>,
    /// How long it shadowed.
    pub soaked: Duration,
}

/// Reply shapes by (version, method), parsed once each.
type Shapes = HashMap<(u32, u16), Option<Arc<Shape>>>;

/// The shared side of a shadowing: the shadow's service, the order lock,
/// and what was seen.
struct Shadow {
    primary: Arc<Service>,
    shadow: Arc<Service>,
    /// The node's version: calls up to it are compared.
    version: u32,
    to: u32,
    active: AtomicBool,
    order: tokio::sync::Mutex<()>,
    compared: AtomicU64,
    mirrored_only: AtomicU64,
    diverged: AtomicU64,
    first: std::sync::Mutex<Option<String>>,
    shapes: std::sync::Mutex<Shapes>,
    /// Woken at the first divergence, to end the soak early.
    diverging: tokio::sync::Notify,
}

impl Shadow {
    /// Answers a call with the current version and mirrors it.
    async fn answer(
        &self,
        version: u32,
        method: u16,
        payload: &[u8],
    ) -> Result<Vec<u8>, DispatchError> {
        let _order = self.order.lock().await;
        let reply = match self.primary.call_local(version, method, payload).await {
            Some(reply) => reply,
            None => unreachable_version(version),
        };
        let Ok(answer) = &reply else {
            return reply;
        };
        if !self.active.load(Ordering::Acquire) {
            return reply;
        }
        let shadow = self.shadow.clone();
        let owned = payload.to_vec();
        let mirrored =
            tokio::spawn(async move { shadow.call_local(version, method, &owned).await }).await;
        if version > self.version {
            self.mirrored_only.fetch_add(1, Ordering::Relaxed);
            return reply;
        }
        self.compared.fetch_add(1, Ordering::Relaxed);
        let why = match mirrored {
            Ok(Some(Ok(shadowed))) => {
                let shape = self.shape(version, method);
                match shape.as_deref() {
                    Some(shape) if schema::same_value(shape, answer, &shadowed) => return reply,
                    Some(shape) => format!(
                        "v{} answered {}, the v{} shadow {}",
                        self.version,
                        schema::show_value(shape, answer),
                        self.to,
                        schema::show_value(shape, &shadowed)
                    ),
                    None if *answer == shadowed => return reply,
                    None => "the answers differ".to_string(),
                }
            }
            Ok(Some(Err(DispatchError::Disallowed(d)))) => {
                format!("the v{} shadow refused it: {d}", self.to)
            }
            Ok(Some(Err(e))) => format!("the v{} shadow failed: {e}", self.to),
            Ok(None) => format!("the v{} shadow does not answer v{version} calls", self.to),
            Err(e) => format!("the v{} shadow panicked: {e}", self.to),
        };
        self.diverge(version, method, payload, &why);
        reply
    }

    fn diverge(&self, version: u32, method: u16, payload: &[u8], why: &str) {
        self.diverged.fetch_add(1, Ordering::Relaxed);
        let mut first = lock(&self.first);
        if first.is_none() {
            *first = Some(format!(
                "v{version} {}: {why}",
                self.call_text(version, method, payload)
            ));
            self.diverging.notify_one();
        }
    }

    /// The reply shape of `method` of `version`, parsed once.
    fn shape(&self, version: u32, method: u16) -> Option<Arc<Shape>> {
        lock(&self.shapes)
            .entry((version, method))
            .or_insert_with(|| {
                let (_, encodings) = self.primary.describe(version)?;
                let e = encodings.get(usize::from(method))?;
                schema::shape_of(e.returns).ok().map(Arc::new)
            })
            .clone()
    }

    fn call_text(&self, version: u32, method: u16, payload: &[u8]) -> String {
        let Some((schema, encodings)) = self.primary.describe(version) else {
            return format!("method {method}");
        };
        let Some(m) = schema.methods.iter().find(|m| m.index == method) else {
            return format!("method {method}");
        };
        let args: Option<Vec<(String, Shape)>> = encodings.get(usize::from(method)).and_then(|e| {
            m.args
                .iter()
                .zip(e.args)
                .map(|(a, enc)| Some((a.name.to_string(), schema::shape_of(enc).ok()?)))
                .collect()
        });
        match args {
            Some(args) => schema::show_call(&m.name, &args, payload),
            None => format!("{}(…)", m.name),
        }
    }

    fn report(&self, soaked: Duration) -> ShadowReport {
        ShadowReport {
            version: self.to,
            compared: self.compared.load(Ordering::Relaxed),
            mirrored_only: self.mirrored_only.load(Ordering::Relaxed),
            diverged: self.diverged.load(Ordering::Relaxed),
            first: lock(&self.first).clone(),
            soaked,
        }
    }
}

/// A version answered through the shadowing: what the server dispatches to.
struct Mirrored {
    shadow: Arc<Shadow>,
    version: u32,
    schema: &'static InterfaceSchema,
    encodings: &'static [MethodEncoding],
}

impl Dispatch for Mirrored {
    fn schema(&self) -> &'static InterfaceSchema {
        self.schema
    }

    fn encodings(&self) -> &'static [MethodEncoding] {
        self.encodings
    }

    async fn call<'a>(
        &'a self,
        method: u16,
        payload: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> Result<(), DispatchError> {
        let reply = self.shadow.answer(self.version, method, payload).await?;
        out.extend_from_slice(&reply);
        Ok(())
    }
}

/// A service the current one was built from, and the versions it answers,
/// is answered by dispatchers it holds: one is always there.
fn unreachable_version(version: u32) -> ! {
    unreachable!("a mirrored service answers only the versions its primary answers (v{version})")
}

/// The current service with every version answered through `shadow`.
fn mirrored(shadow: &Arc<Shadow>) -> Service {
    let primary = &shadow.primary;
    let dispatcher = |version: u32| {
        let (schema, encodings) = primary
            .describe(version)
            .unwrap_or_else(|| unreachable_version(version));
        Mirrored {
            shadow: shadow.clone(),
            version,
            schema,
            encodings,
        }
    };
    primary
        .versions()
        .filter(|v| *v != primary.version())
        .fold(Service::new(dispatcher(primary.version())), |service, v| {
            service.with_version(dispatcher(v))
        })
}

impl Node {
    /// Runs `to` as a shadow of the current version for `policy.soak`:
    /// calls are held back while the shadow starts on a copy of the state
    /// (in memory, transformed), then every call is mirrored to it. The
    /// current service is back in place when this returns; an error when
    /// the shadow diverged, or saw too few calls to tell.
    pub(super) async fn shadow(
        &self,
        to: u32,
        policy: ShadowPolicy,
        current: &Current,
    ) -> Result<ShadowReport, NodeError> {
        let stage = &self.inner.stages[&to];
        let primary = self.quiesce().await?;
        let started = super::upgrade::guarded(to, || {
            let snapshot = (current.snapshot)()?;
            match stage.start_in_memory(Some(&snapshot)) {
                Some(running) => running,
                None => Err(NodeError::Prepare {
                    version: to,
                    reason: "its stage cannot start in memory, so it cannot run as a shadow".into(),
                }),
            }
        });
        let Running { service, .. } = match started {
            Ok(running) => running,
            Err(e) => {
                primary.reopen();
                return Err(e);
            }
        };
        let shadow = Arc::new(Shadow {
            primary: primary.clone(),
            shadow: Arc::new(service),
            version: primary.version(),
            to,
            active: AtomicBool::new(true),
            order: tokio::sync::Mutex::new(()),
            compared: AtomicU64::new(0),
            mirrored_only: AtomicU64::new(0),
            diverged: AtomicU64::new(0),
            first: std::sync::Mutex::new(None),
            shapes: std::sync::Mutex::new(HashMap::new()),
            diverging: tokio::sync::Notify::new(),
        });
        self.inner.server.install(mirrored(&shadow));
        let soaking = Instant::now();
        tracing::info!(node = %self.inner.config.id, version = to, soak = ?policy.soak, "shadowing");
        // The soak ends early at the first divergence.
        let _ = tokio::time::timeout(policy.soak, shadow.diverging.notified()).await;
        // Back to the current service: the mirrored one answers only the
        // calls already inside it, without the shadow.
        shadow.active.store(false, Ordering::Release);
        primary.reopen();
        self.inner.server.install_shared(primary);
        let report = shadow.report(soaking.elapsed());
        *lock(&self.inner.shadowed) = Some(report.clone());
        tracing::info!(
            node = %self.inner.config.id,
            version = to,
            compared = report.compared,
            diverged = report.diverged,
            "shadowed"
        );
        if let Some(first) = &report.first {
            return Err(NodeError::Shadow {
                version: to,
                reason: format!(
                    "it answered {} of {} calls otherwise than v{}; the first: {first}",
                    report.diverged,
                    report.compared,
                    self.version()
                ),
            });
        }
        if report.compared < policy.min_calls {
            return Err(NodeError::Shadow {
                version: to,
                reason: format!(
                    "only {} calls were compared in {:?}, and telling needs {}",
                    report.compared, policy.soak, policy.min_calls
                ),
            });
        }
        Ok(report)
    }
}
