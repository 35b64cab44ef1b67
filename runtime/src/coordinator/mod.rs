//! The coordinator: stores upgrade definitions and, in the UDB, every node
//! and the history of upgrades; grants upgrade slots as schedules allow.
//!
//! It is itself an upshift service: its RPC interface ([`api`]) is declared
//! with `#[upshift::interface]` in `crate::upgrade::api`, and nodes talk to
//! it through the generated client.

mod access;
mod analysis;
mod commit;
mod handlers;
mod metrics;
mod rollout;
#[cfg(test)]
mod tests;
mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
pub use crate::metrics::MetricsServer;
use crate::rpc::{Listener, Server, ServerConfig, ServerTls};
use crate::schedule::Registry;
use crate::sync::lock;
use crate::udb::{Udb, UdbError};
use crate::upgrade::NodeState;
pub use crate::upgrade::api;
use crate::upgrade::api::Unrecorded;
use crate::upgrade::release::ReleaseKeys;
pub use metrics::Metrics;
pub use rollout::Notice;
use rollout::Txn;
pub use webhook::Webhook;

/// The coordinator's service object.
pub struct Coordinator {
    /// The content, and the UDB writes that make it durable.
    store: Arc<commit::Store>,
    schedules: Registry,
    slot_timeout: Duration,
    clock: Arc<dyn Clock>,
    /// When set, only releases signed by these keys are published.
    release_keys: Option<ReleaseKeys>,
    /// A node's last report counts for health gates only this long.
    heard_within: Duration,
    /// When each caller's last refused call was recorded (TLS only).
    refusals: Mutex<std::collections::HashMap<String, u64>>,
    /// Wakes `wait_slot` calls: one per freed slot, all when a rollout's
    /// state changed.
    slots: tokio::sync::Notify,
}

/// A caller's refused calls are recorded in the history at most this often.
const REFUSALS_EVERY_MS: u64 = 60_000;

/// How long a node may hold a slot without a heartbeat or report before it
/// counts as lost: longer than the slowest upgrade (transform, restart).
pub const DEFAULT_SLOT_TIMEOUT: Duration = Duration::from_secs(300);

/// How recently a node must have been heard from for its health report to
/// count: 30 heartbeats at the nodes' default interval (100 ms).
pub const DEFAULT_HEARD_WITHIN: Duration = Duration::from_secs(3);

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("schedules", &self.schedules)
            .finish()
    }
}

impl Coordinator {
    /// A coordinator over `udb`, resuming from what it holds.
    pub fn open(udb: impl Udb, schedules: Registry) -> Result<Self, UdbError> {
        Self::open_with_clock(udb, schedules, SystemClock)
    }

    /// A coordinator that reads the time from `clock`: schedules' windows,
    /// soak and health times, and slot expiry all follow it.
    pub fn open_with_clock(
        udb: impl Udb,
        schedules: Registry,
        clock: impl Clock,
    ) -> Result<Self, UdbError> {
        let mut content = udb.read_all()?;
        // Time the coordinator was down does not count against slot holders:
        // they could not report to it.
        let now = clock.now_ms();
        for node in content.nodes.values_mut() {
            if matches!(node.state, NodeState::Upgrading { .. }) {
                node.last_seen_ms = node.last_seen_ms.max(now);
            }
        }
        Ok(Coordinator {
            store: commit::Store::new(Box::new(udb), content),
            schedules,
            slot_timeout: DEFAULT_SLOT_TIMEOUT,
            clock: Arc::new(clock),
            release_keys: None,
            heard_within: DEFAULT_HEARD_WITHIN,
            refusals: Mutex::new(std::collections::HashMap::new()),
            slots: tokio::sync::Notify::new(),
        })
    }

    /// How recently a node must have been heard from for its last health
    /// report to count ([`DEFAULT_HEARD_WITHIN`] unless set): a health gate
    /// holds the rollout, and it is not declared final, while an upgraded
    /// node is silent for longer (it may have died after reporting
    /// healthy). Keep it several of the nodes' heartbeat intervals.
    pub fn with_heard_within(mut self, within: Duration) -> Self {
        self.heard_within = within;
        self
    }

    /// Publishes only signed releases: an artifact must be a release signed
    /// by at least the threshold of `keys`, unexpired, of the published
    /// service and version, and not older (by sequence) than one published
    /// before; `file:` artifacts are refused (`in-process` ones run code the
    /// nodes already hold). Nodes check releases themselves as well.
    pub fn with_release_keys(mut self, keys: ReleaseKeys) -> Self {
        self.release_keys = Some(keys);
        self
    }

    /// How long a node may hold a slot unheard before it counts as lost
    /// ([`DEFAULT_SLOT_TIMEOUT`] unless set): it is marked failed and the
    /// rollout halts. Set it above the slowest upgrade: a node sends no
    /// heartbeat while it transforms its state or restarts.
    pub fn with_slot_timeout(mut self, timeout: Duration) -> Self {
        self.slot_timeout = timeout;
        self
    }

    /// Serves the coordinator on `addr` (port 0 picks one).
    pub async fn serve(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<(Server, Listener)> {
        let server = Server::new(api::v6::service(self));
        let listener = server.listen(addr).await?;
        tracing::warn!(
            addr = %listener.local_addr(),
            "the coordinator serves plain TCP: anyone who can reach it can publish upgrades,              register nodes and steer rollouts; serve it with TLS outside local development"
        );
        Ok((server, listener))
    }

    /// Serves the coordinator's interface on `addr` with mutual TLS: only
    /// callers with a certificate of `tls`'s CA are served, and each may
    /// make only the calls its identity allows (a node acts only as
    /// itself; operators publish and steer; readers look). A refused call
    /// is answered `Forbidden` and does not run.
    pub async fn serve_tls(
        self,
        addr: impl tokio::net::ToSocketAddrs,
        tls: ServerTls,
    ) -> std::io::Result<(Server, Listener)> {
        let config = ServerConfig {
            tls: Some(tls),
            ..ServerConfig::default()
        };
        let coordinator = Arc::new(self);
        let service = api::v6::service(coordinator.clone()).guarded(access::guard(coordinator));
        let server = Server::with_config(service, config);
        let listener = server.listen(addr).await?;
        Ok((server, listener))
    }

    /// Records that `caller` made a call it may not, or asked for what the
    /// coordinator refuses to record (a release its keys do not vouch for),
    /// at most once a minute per caller: a certificate holder cannot grow the history, or
    /// keep the UDB writing, by calling what it may not. Every refusal is
    /// logged.
    fn refused(&self, caller: Option<&crate::rpc::Identity>, why: &str) {
        match caller {
            Some(caller) => tracing::warn!(%caller, "refused a call: {why}"),
            None => tracing::warn!("refused a call: {why}"),
        }
        let now = self.clock.now_ms();
        {
            let mut last = lock(&self.refusals);
            // Callers without an identity (no TLS) share one entry.
            let key = caller.map(crate::rpc::Identity::uri).unwrap_or_default();
            if last
                .get(&key)
                .is_some_and(|at| now.saturating_sub(*at) < REFUSALS_EVERY_MS)
            {
                return;
            }
            // Bounded: identities come from the CA, but the map must not grow without end.
            if last.len() >= 4096 {
                last.clear();
            }
            last.insert(key, now);
        }
        // Recorded without waiting: the caller is answered `Forbidden`
        // whether or not the UDB takes the line.
        let _ = self.apply(|txn| txn.event(None, None, format!("refused a call: {why}")));
    }

    /// Runs `change` under the lock and answers once what it recorded is in
    /// the UDB (written together with the requests that came meanwhile,
    /// [`commit`]). If the UDB refuses the write, the change is taken back
    /// and the request fails: nothing unrecorded is ever answered as done.
    async fn transact<T>(&self, change: impl FnOnce(&mut Txn<'_>) -> T) -> Result<T, Unrecorded> {
        let (answer, durable) = self.apply(change);
        match durable {
            None => Ok(answer),
            Some(durable) => match durable.await {
                Ok(Ok(())) => Ok(answer),
                Ok(Err(unrecorded)) => Err(unrecorded),
                Err(_) => Err(Unrecorded {
                    detail: "the UDB writer stopped before recording the change".into(),
                }),
            },
        }
    }

    /// Runs `change` under the lock and queues what it recorded; the
    /// receiver resolves when it is durable (`None`: nothing to wait for).
    fn apply<T>(&self, change: impl FnOnce(&mut Txn<'_>) -> T) -> (T, Option<commit::Durable>) {
        let mut content = lock(&self.store.content);
        let mut tally = lock(&self.store.tally);
        let mut txn = Txn::new(
            &mut content,
            &mut tally,
            self.clock.now_ms(),
            self.heard_within,
        );
        // Every request is a moment to notice lost slot holders: heartbeats
        // of the other nodes keep them coming.
        txn.expire_slots(self.slot_timeout);
        // What the request changes is its caller's doing (the expiries
        // above are the coordinator's): the history says who, when the
        // caller's certificate named them.
        txn.by = crate::rpc::caller().map(|caller| caller.to_string());
        let answer = change(&mut txn);
        let freed = txn.freed;
        let (batch, undo, notices) = txn.finish();
        // Nodes waiting for a slot ask again: one for each slot freed (the
        // one woken takes it, if its schedule lets it; else it waits for
        // its timeout), all of them when a rollout changed state.
        if !notices.is_empty() {
            self.slots.notify_waiters();
        }
        for _ in 0..freed {
            self.slots.notify_one();
        }
        let durable = self.store.enqueue(batch, undo, notices);
        (answer, durable)
    }
}
