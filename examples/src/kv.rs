//! The versioned key-value store: three interface versions, a service object
//! for each, and the past and future SOs between them.
//!
//! - v1 stores strings;
//! - v2 adds expiry (`ttl_secs` on `put`) and `delete`;
//! - v3 returns an [`interface::Entry`] from `get`, so callers see
//!   when a value expires, and adds `keys`.

use upshift::clock::now_ms;
use upshift::state::{Durable, Follows, Journaled};

use upshift::Disallowed;

#[upshift::interface]
pub mod interface {
    use serde::{Deserialize, Serialize};

    /// A value with what the node knows of its expiry (v3 and later).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, upshift::Schema)]
    pub struct Entry {
        /// The stored value.
        pub value: String,
        /// When the value expires.
        pub expiry: Expiry,
    }

    /// When a value expires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, upshift::Schema)]
    pub enum Expiry {
        /// It was stored without a TTL.
        Never,
        /// It expires in this many seconds (rounded up).
        InSecs(u64),
        /// The node that answered cannot tell (a v2 node behind a future SO).
        Unknown,
    }

    /// v1: a plain string store.
    #[version(1)]
    pub trait Kv {
        /// The value stored under `key`.
        async fn get(&self, key: String) -> Option<String>;
        /// Stores `value` under `key`, replacing any previous value.
        async fn put(&self, key: String, value: String);
    }

    /// v2: values may expire; adds delete.
    #[version(2)]
    pub trait Kv {
        /// The value stored under `key`, unless it expired.
        async fn get(&self, key: String) -> Option<String>;
        /// Stores `value` under `key`; it expires after `ttl_secs` if given.
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
        /// Removes `key`; returns whether it was present.
        async fn delete(&self, key: String) -> bool;
    }

    /// v3: `get` tells when the value expires; adds listing keys.
    #[version(3)]
    pub trait Kv {
        /// The entry stored under `key`, unless it expired.
        async fn get(&self, key: String) -> Option<Entry>;
        /// Stores `value` under `key`; it expires after `ttl_secs` if given.
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
        /// Removes `key`; returns whether it was present.
        async fn delete(&self, key: String) -> bool;
        /// Every live key that starts with `prefix`, in order.
        async fn keys(&self, prefix: String) -> Vec<String>;
    }
}

/// The persistent state of a key-value node, one version per interface version.
///
/// - v1 → v2: `items` changes type (`with`), `evictions` is new (`default`),
///   and `Entry` is a new nested type;
/// - v2 → v3: `items` is renamed `entries` (`from`), and the nested `Entry`
///   changes (its `expires_at_ms` becomes an `Expiry`, `hits` is new), so
///   `entries` transforms through `Entry`'s own transform.
#[upshift::state(name = "kv", rollback)]
pub mod state {
    use std::collections::BTreeMap;

    /// v1: each key's string value.
    #[version(1)]
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Store {
        pub items: BTreeMap<String, String>,
    }

    /// v2: entries carry an expiry time; evictions are counted.
    #[version(2)]
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Store {
        #[upshift(with = never_expire, inverse = values_only)]
        pub items: BTreeMap<String, Entry>,
        #[upshift(default)]
        pub evictions: u64,
    }

    #[version(2)]
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        pub value: String,
        /// Unix time in milliseconds when the value expires.
        pub expires_at_ms: Option<u64>,
    }

    /// v3: `items` is now `entries`; an entry's expiry is an enum and its hits are counted.
    #[version(3)]
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Store {
        #[upshift(from = "items")]
        pub entries: BTreeMap<String, Entry>,
        pub evictions: u64,
    }

    #[version(3)]
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        pub value: String,
        #[upshift(from = "expires_at_ms", with = Expiry::from_unix_ms, inverse = Expiry::to_unix_ms)]
        pub expiry: Expiry,
        #[upshift(default)]
        pub hits: u64,
    }

    #[version(3)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Expiry {
        Never,
        AtUnixMs(u64),
    }

    /// v1 values never expire.
    fn never_expire(items: BTreeMap<String, String>) -> BTreeMap<String, v2::Entry> {
        items
            .into_iter()
            .map(|(k, value)| {
                let entry = v2::Entry {
                    value,
                    expires_at_ms: None,
                };
                (k, entry)
            })
            .collect()
    }

    /// A rollback to v1 keeps the values; v1 has no expiry to keep.
    fn values_only(items: BTreeMap<String, v2::Entry>) -> BTreeMap<String, String> {
        items.into_iter().map(|(k, e)| (k, e.value)).collect()
    }

    impl v3::Expiry {
        fn from_unix_ms(ms: Option<u64>) -> Self {
            ms.map_or(v3::Expiry::Never, v3::Expiry::AtUnixMs)
        }

        fn to_unix_ms(self) -> Option<u64> {
            match self {
                v3::Expiry::Never => None,
                v3::Expiry::AtUnixMs(ms) => Some(ms),
            }
        }
    }
}

use interface::{Entry, Expiry, v1, v2, v3};

/// The example's version diff page: the interface's versions, then the
/// state's, as Markdown, or as one JSON object for tools.
pub fn versions_page(json: bool) -> String {
    if json {
        format!(
            "{{\"interfaces\":{{\"Kv\":{}}},\"states\":{{\"kv\":{}}}}}\n",
            upshift::docs::json(interface::VERSIONS).trim_end(),
            upshift::docs::state_json(state::VERSIONS).trim_end()
        )
    } else {
        format!(
            "{}\n{}",
            upshift::docs::markdown(interface::VERSIONS),
            upshift::docs::state_markdown(state::VERSIONS)
        )
    }
}

// ---- past SOs: callers of an older version on an upgraded node ----

/// v1 callers on a node that speaks v2: a v1 `put` stores without expiry.
impl<N: v2::Interface> v1::Past for v1::PastSo<N> {
    async fn put(&self, key: String, value: String) -> Result<(), Disallowed> {
        self.next.put(key, value, None).await
    }
}

/// v2 callers on a node that speaks v3: `get` drops the expiry information.
impl<N: v3::Interface> v2::Past for v2::PastSo<N> {
    async fn get(&self, key: String) -> Result<Option<String>, Disallowed> {
        Ok(self.next.get(key).await?.map(|entry| entry.value))
    }
}

// ---- future SOs: callers of a newer version on a node not yet upgraded ----

/// v2 callers on a node that still speaks v1: no expiry, no delete.
impl<P: v1::Interface> v2::Future for v2::FutureSo<P> {
    async fn put(
        &self,
        key: String,
        value: String,
        ttl_secs: Option<u64>,
    ) -> Result<(), Disallowed> {
        match ttl_secs {
            None => self.prev.put(key, value).await,
            Some(_) => Err(Disallowed::new(
                "a v1 node cannot expire values; put without ttl_secs",
            )),
        }
    }

    async fn delete(&self, _key: String) -> Result<bool, Disallowed> {
        Err(Disallowed::new("delete needs a node that runs v2 or later"))
    }
}

/// v3 callers on a node that still speaks v2: expiry is unknown, no listing.
impl<P: v2::Interface> v3::Future for v3::FutureSo<P> {
    async fn get(&self, key: String) -> Result<Option<Entry>, Disallowed> {
        let value = self.prev.get(key).await?;
        Ok(value.map(|value| Entry {
            value,
            expiry: Expiry::Unknown,
        }))
    }

    async fn keys(&self, _prefix: String) -> Result<Vec<String>, Disallowed> {
        Err(Disallowed::new("keys needs a node that runs v3"))
    }
}

// ---- journaled changes: how each version's state is written ----

/// A change to v1 state, as the journal records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
pub enum ChangeV1 {
    /// Stores `value` under `key`.
    Put { key: String, value: String },
}

impl Journaled for state::v1::Store {
    type Change = ChangeV1;
    type Output = ();

    fn apply(&mut self, change: ChangeV1) {
        match change {
            ChangeV1::Put { key, value } => {
                self.items.insert(key, value);
            }
        }
    }
}

/// A change to v2 state. Each carries the time it was made at, so replaying
/// it after a crash evicts and expires exactly as it did the first time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
pub enum ChangeV2 {
    /// Stores an entry.
    Put {
        key: String,
        value: String,
        expires_at_ms: Option<u64>,
    },
    /// Removes `key` if it is live at `now_ms`.
    Delete { key: String, now_ms: u64 },
    /// Evicts `key` if it expired by `now_ms`.
    Evict { key: String, now_ms: u64 },
}

impl state::v2::Store {
    /// Evicts `key` if it expired by `now`; whether it is live.
    fn evict(&mut self, key: &str, now: u64) -> bool {
        match self.items.get(key) {
            Some(e) if e.expires_at_ms.is_some_and(|at| at <= now) => {
                self.items.remove(key);
                self.evictions += 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

impl Journaled for state::v2::Store {
    type Change = ChangeV2;
    /// Whether the key was there (and live).
    type Output = bool;

    fn apply(&mut self, change: ChangeV2) -> bool {
        match change {
            ChangeV2::Put {
                key,
                value,
                expires_at_ms,
            } => self
                .items
                .insert(
                    key,
                    state::v2::Entry {
                        value,
                        expires_at_ms,
                    },
                )
                .is_some(),
            ChangeV2::Delete { key, now_ms } => {
                self.evict(&key, now_ms) && self.items.remove(&key).is_some()
            }
            ChangeV2::Evict { key, now_ms } => self.evict(&key, now_ms),
        }
    }
}

/// A v1 change on v2 state, while an upgrade to v2 transforms in the
/// background: a v1 put stores a value that never expires, as the
/// transform (`never_expire`) makes of it.
impl Follows for state::v2::Store {
    type Previous = state::v1::Store;

    fn follow(&mut self, change: ChangeV1) {
        match change {
            ChangeV1::Put { key, value } => {
                self.apply(ChangeV2::Put {
                    key,
                    value,
                    expires_at_ms: None,
                });
            }
        }
    }
}

/// A change to v3 state, with the time it was made at.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
pub enum ChangeV3 {
    /// Stores an entry with no hits.
    Put {
        key: String,
        value: String,
        expiry: state::v3::Expiry,
    },
    /// Removes `key` if it is live at `now_ms`.
    Delete { key: String, now_ms: u64 },
    /// Counts a read of `key` (evicting it if it expired by `now_ms`).
    Hit { key: String, now_ms: u64 },
}

impl state::v3::Store {
    fn expired(entry: &state::v3::Entry, now: u64) -> bool {
        matches!(entry.expiry, state::v3::Expiry::AtUnixMs(at) if at <= now)
    }

    /// The live entry under `key` at `now`; an expired one is evicted.
    fn live(&mut self, key: &str, now: u64) -> Option<&mut state::v3::Entry> {
        if self.entries.get(key).is_some_and(|e| Self::expired(e, now)) {
            self.entries.remove(key);
            self.evictions += 1;
        }
        self.entries.get_mut(key)
    }
}

impl Journaled for state::v3::Store {
    type Change = ChangeV3;
    /// The entry read or deleted.
    type Output = Option<state::v3::Entry>;

    fn apply(&mut self, change: ChangeV3) -> Option<state::v3::Entry> {
        match change {
            ChangeV3::Put { key, value, expiry } => {
                let entry = state::v3::Entry {
                    value,
                    expiry,
                    hits: 0,
                };
                self.entries.insert(key, entry);
                None
            }
            ChangeV3::Delete { key, now_ms } => {
                self.live(&key, now_ms)?;
                self.entries.remove(&key)
            }
            ChangeV3::Hit { key, now_ms } => {
                let entry = self.live(&key, now_ms)?;
                entry.hits += 1;
                Some(entry.clone())
            }
        }
    }
}

/// A v2 change on v3 state: the same effect, with the expiry as the
/// transform makes it (`Expiry::from_unix_ms`) and hits untouched.
impl Follows for state::v3::Store {
    type Previous = state::v2::Store;

    fn follow(&mut self, change: ChangeV2) {
        match change {
            ChangeV2::Put {
                key,
                value,
                expires_at_ms,
            } => {
                let expiry =
                    expires_at_ms.map_or(state::v3::Expiry::Never, state::v3::Expiry::AtUnixMs);
                self.apply(ChangeV3::Put { key, value, expiry });
            }
            ChangeV2::Delete { key, now_ms } => {
                self.apply(ChangeV3::Delete { key, now_ms });
            }
            ChangeV2::Evict { key, now_ms } => {
                self.live(&key, now_ms);
            }
        }
    }
}

// ---- service objects: each holds its version's state ----

/// The v1 service object.
#[derive(Debug, Clone)]
pub struct StoreV1 {
    state: Durable<state::v1::Store>,
}

impl Default for StoreV1 {
    /// Fresh state, kept in memory only.
    fn default() -> Self {
        StoreV1::new(Durable::in_memory(state::v1::Store::default()))
    }
}

impl StoreV1 {
    /// A store serving `state`.
    pub fn new(state: Durable<state::v1::Store>) -> Self {
        StoreV1 { state }
    }
}

impl v1::Kv for StoreV1 {
    async fn get(&self, key: String) -> Option<String> {
        self.state.read(|s| s.items.get(&key).cloned())
    }

    async fn put(&self, key: String, value: String) {
        self.state.write(ChangeV1::Put { key, value }).await;
    }
}

/// The v2 service object: values may expire.
#[derive(Debug, Clone)]
pub struct StoreV2 {
    state: Durable<state::v2::Store>,
}

impl Default for StoreV2 {
    /// Fresh state, kept in memory only.
    fn default() -> Self {
        StoreV2::new(Durable::in_memory(state::v2::Store::default()))
    }
}

impl StoreV2 {
    /// A store serving `state`.
    pub fn new(state: Durable<state::v2::Store>) -> Self {
        StoreV2 { state }
    }
}

impl v2::Kv for StoreV2 {
    async fn get(&self, key: String) -> Option<String> {
        let now = now_ms();
        let entry = self.state.read(|s| s.items.get(&key).cloned())?;
        if entry.expires_at_ms.is_some_and(|at| at <= now) {
            // Evicting is a change, but nobody waits for it: a crash that
            // loses it leaves an expired entry the next read evicts.
            self.state
                .write_relaxed(ChangeV2::Evict { key, now_ms: now });
            return None;
        }
        Some(entry.value)
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        // A TTL past the end of time never expires rather than overflowing.
        let expires_at_ms = ttl_secs.map(|s| now_ms().saturating_add(s.saturating_mul(1000)));
        let change = ChangeV2::Put {
            key,
            value,
            expires_at_ms,
        };
        self.state.write(change).await;
    }

    async fn delete(&self, key: String) -> bool {
        let change = ChangeV2::Delete {
            key,
            now_ms: now_ms(),
        };
        self.state.write(change).await
    }
}

/// The v3 service object: entries tell their expiry and count their reads.
#[derive(Debug, Clone)]
pub struct StoreV3 {
    state: Durable<state::v3::Store>,
}

impl Default for StoreV3 {
    /// Fresh state, kept in memory only.
    fn default() -> Self {
        StoreV3::new(Durable::in_memory(state::v3::Store::default()))
    }
}

impl StoreV3 {
    /// A store serving `state`.
    pub fn new(state: Durable<state::v3::Store>) -> Self {
        StoreV3 { state }
    }
}

impl v3::Kv for StoreV3 {
    async fn get(&self, key: String) -> Option<Entry> {
        let now = now_ms();
        // Counting hits must not make every read wait for a sync: a crash
        // may lose the last few counts, never an acknowledged put.
        let entry = self
            .state
            .write_relaxed(ChangeV3::Hit { key, now_ms: now })?;
        Some(Entry {
            value: entry.value,
            expiry: match entry.expiry {
                state::v3::Expiry::Never => Expiry::Never,
                state::v3::Expiry::AtUnixMs(at) => {
                    Expiry::InSecs(at.saturating_sub(now).div_ceil(1000))
                }
            },
        })
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        let expiry = ttl_secs.map_or(state::v3::Expiry::Never, |s| {
            state::v3::Expiry::AtUnixMs(now_ms().saturating_add(s.saturating_mul(1000)))
        });
        self.state.write(ChangeV3::Put { key, value, expiry }).await;
    }

    async fn delete(&self, key: String) -> bool {
        let change = ChangeV3::Delete {
            key,
            now_ms: now_ms(),
        };
        self.state.write(change).await.is_some()
    }

    async fn keys(&self, prefix: String) -> Vec<String> {
        let now = now_ms();
        self.state.read(|s| {
            s.entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, e)| !state::v3::Store::expired(e, now))
                .map(|(k, _)| k.clone())
                .collect()
        })
    }
}

/// A node's service at `version` (1 to 3), with past SOs for every older
/// version and, when `with_future`, future SOs for every newer one.
///
/// # Panics
///
/// If `version` is not 1, 2 or 3.
pub fn service(version: u32, with_future: bool) -> upshift::Service {
    match (version, with_future) {
        (1, false) => v1::service(StoreV1::default()),
        (1, true) => v1::service_with_future(StoreV1::default()),
        (2, false) => v2::service(StoreV2::default()),
        (2, true) => v2::service_with_future(StoreV2::default()),
        (3, _) => v3::service(StoreV3::default()),
        _ => panic!("the key-value example has versions 1 to 3, not {version}"),
    }
}

/// The key-value node's code for every version, as stages of an
/// [`upshift::node::Node`]: v1 and v2 also serve newer callers through their
/// future SOs, and every version serves older callers through its past SOs.
pub fn stages() -> Vec<Box<dyn upshift::node::Stage>> {
    use upshift::node::durable_stage;
    vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            v1::service_with_future(StoreV1::new(s))
        })),
        Box::new(
            durable_stage(|s: Durable<state::v2::Store>| v2::service_with_future(StoreV2::new(s)))
                .following()
                .reversible(),
        ),
        Box::new(
            durable_stage(|s: Durable<state::v3::Store>| v3::service(StoreV3::new(s)))
                .following()
                .reversible(),
        ),
    ]
}

/// The key-value store's conformance tests ([`upshift::conformance`]): its
/// stages, and the one answer its specification allows a future SO that
/// the newer object never gives: a v2 node cannot tell when a value
/// expires, so v3 callers it serves see [`Expiry::Unknown`].
pub fn conformance() -> upshift::conformance::Conformance {
    upshift::conformance::Conformance::new(stages()).accept_future(
        |future: &v3::Response, object: &v3::Response| {
            matches!(
                (future, object),
                (v3::Response::Get(Some(f)), v3::Response::Get(Some(o)))
                    if f.value == o.value && f.expiry == Expiry::Unknown
            )
        },
    )
}
