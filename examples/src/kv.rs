//! The versioned key-value store: three interface versions, a service object
//! for each, and the past and future SOs between them.
//!
//! - v1 stores strings;
//! - v2 adds expiry (`ttl_secs` on `put`) and `delete`;
//! - v3 returns an [`interface::Entry`] from `get`, so callers see
//!   when a value expires, and adds `keys`.

use std::sync::{Arc, Mutex};
use upshift::clock::now_ms;
use upshift::sync::lock;

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
#[upshift::state(name = "kv")]
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
        #[upshift(with = never_expire)]
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
        #[upshift(from = "expires_at_ms", with = Expiry::from_unix_ms)]
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

    impl v3::Expiry {
        fn from_unix_ms(ms: Option<u64>) -> Self {
            ms.map_or(v3::Expiry::Never, v3::Expiry::AtUnixMs)
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

// ---- service objects: each holds its version's state ----

/// The v1 service object.
#[derive(Debug, Default)]
pub struct StoreV1 {
    state: Mutex<state::v1::Store>,
}

impl StoreV1 {
    /// A store serving `state`.
    pub fn from_state(state: state::v1::Store) -> Self {
        StoreV1 {
            state: Mutex::new(state),
        }
    }

    /// A copy of the state, to save.
    pub fn to_state(&self) -> state::v1::Store {
        lock(&self.state).clone()
    }
}

impl v1::Kv for StoreV1 {
    async fn get(&self, key: String) -> Option<String> {
        lock(&self.state).items.get(&key).cloned()
    }

    async fn put(&self, key: String, value: String) {
        lock(&self.state).items.insert(key, value);
    }
}

/// The v2 service object: values may expire.
#[derive(Debug, Default)]
pub struct StoreV2 {
    state: Mutex<state::v2::Store>,
}

impl StoreV2 {
    /// A store serving `state`.
    pub fn from_state(state: state::v2::Store) -> Self {
        StoreV2 {
            state: Mutex::new(state),
        }
    }

    /// A copy of the state, to save.
    pub fn to_state(&self) -> state::v2::Store {
        lock(&self.state).clone()
    }

    /// The live entry under `key`; an expired one is evicted.
    fn live(store: &mut state::v2::Store, key: &str) -> Option<state::v2::Entry> {
        let entry = store.items.get(key)?;
        if entry.expires_at_ms.is_some_and(|at| at <= now_ms()) {
            store.items.remove(key);
            store.evictions += 1;
            return None;
        }
        Some(entry.clone())
    }
}

impl v2::Kv for StoreV2 {
    async fn get(&self, key: String) -> Option<String> {
        Self::live(&mut lock(&self.state), &key).map(|e| e.value)
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        // A TTL past the end of time never expires rather than overflowing.
        let expires_at_ms = ttl_secs.map(|s| now_ms().saturating_add(s.saturating_mul(1000)));
        lock(&self.state).items.insert(
            key,
            state::v2::Entry {
                value,
                expires_at_ms,
            },
        );
    }

    async fn delete(&self, key: String) -> bool {
        let mut store = lock(&self.state);
        Self::live(&mut store, &key).is_some() && store.items.remove(&key).is_some()
    }
}

/// The v3 service object: entries tell their expiry and count their reads.
#[derive(Debug, Default)]
pub struct StoreV3 {
    state: Mutex<state::v3::Store>,
}

impl StoreV3 {
    /// A store serving `state`.
    pub fn from_state(state: state::v3::Store) -> Self {
        StoreV3 {
            state: Mutex::new(state),
        }
    }

    /// A copy of the state, to save.
    pub fn to_state(&self) -> state::v3::Store {
        lock(&self.state).clone()
    }

    fn expired(entry: &state::v3::Entry, now: u64) -> bool {
        matches!(entry.expiry, state::v3::Expiry::AtUnixMs(at) if at <= now)
    }

    /// The live entry under `key`; an expired one is evicted.
    fn live<'a>(store: &'a mut state::v3::Store, key: &str) -> Option<&'a mut state::v3::Entry> {
        if store
            .entries
            .get(key)
            .is_some_and(|e| Self::expired(e, now_ms()))
        {
            store.entries.remove(key);
            store.evictions += 1;
        }
        store.entries.get_mut(key)
    }
}

impl v3::Kv for StoreV3 {
    async fn get(&self, key: String) -> Option<Entry> {
        let mut store = lock(&self.state);
        let entry = Self::live(&mut store, &key)?;
        entry.hits += 1;
        Some(Entry {
            value: entry.value.clone(),
            expiry: match entry.expiry {
                state::v3::Expiry::Never => Expiry::Never,
                state::v3::Expiry::AtUnixMs(at) => {
                    Expiry::InSecs(at.saturating_sub(now_ms()).div_ceil(1000))
                }
            },
        })
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        let expiry = ttl_secs.map_or(state::v3::Expiry::Never, |s| {
            state::v3::Expiry::AtUnixMs(now_ms().saturating_add(s.saturating_mul(1000)))
        });
        lock(&self.state).entries.insert(
            key,
            state::v3::Entry {
                value,
                expiry,
                hits: 0,
            },
        );
    }

    async fn delete(&self, key: String) -> bool {
        let mut store = lock(&self.state);
        Self::live(&mut store, &key).is_some() && store.entries.remove(&key).is_some()
    }

    async fn keys(&self, prefix: String) -> Vec<String> {
        let now = now_ms();
        lock(&self.state)
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, e)| !Self::expired(e, now))
            .map(|(k, _)| k.clone())
            .collect()
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
    use upshift::node::stage;
    vec![
        Box::new(stage(|s: state::v1::Store| {
            let object = Arc::new(StoreV1::from_state(s));
            let read = object.clone();
            (v1::service_with_future(object), move || read.to_state())
        })),
        Box::new(stage(|s: state::v2::Store| {
            let object = Arc::new(StoreV2::from_state(s));
            let read = object.clone();
            (v2::service_with_future(object), move || read.to_state())
        })),
        Box::new(stage(|s: state::v3::Store| {
            let object = Arc::new(StoreV3::from_state(s));
            let read = object.clone();
            (v3::service(object), move || read.to_state())
        })),
    ]
}
