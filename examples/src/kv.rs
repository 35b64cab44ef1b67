//! The versioned key-value store: three interface versions, a service object
//! for each, and the past and future SOs between them.
//!
//! - v1 stores strings;
//! - v2 adds expiry (`ttl_secs` on `put`) and `delete`;
//! - v3 returns an [`Entry`](interface::Entry) from `get`, so callers see
//!   when a value expires, and adds `keys`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use upshift::Disallowed;

#[upshift::interface]
pub mod interface {
    use serde::{Deserialize, Serialize};

    /// A value with what the node knows of its expiry (v3 and later).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Entry {
        /// The stored value.
        pub value: String,
        /// When the value expires.
        pub expiry: Expiry,
    }

    /// When a value expires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

use interface::{Entry, Expiry, v1, v2, v3};

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

// ---- service objects ----

/// The v1 service object: strings in a map.
#[derive(Debug, Default)]
pub struct StoreV1 {
    items: Mutex<BTreeMap<String, String>>,
}

impl v1::Kv for StoreV1 {
    async fn get(&self, key: String) -> Option<String> {
        lock(&self.items).get(&key).cloned()
    }

    async fn put(&self, key: String, value: String) {
        lock(&self.items).insert(key, value);
    }
}

/// A stored value and when it expires.
#[derive(Debug, Clone)]
struct Stored {
    value: String,
    expires_at: Option<Instant>,
}

impl Stored {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// Values with optional expiry, shared by the v2 and v3 objects.
#[derive(Debug, Default)]
struct ExpiringMap {
    items: Mutex<BTreeMap<String, Stored>>,
}

impl ExpiringMap {
    fn get(&self, key: &str) -> Option<Stored> {
        let now = Instant::now();
        lock(&self.items).get(key).filter(|s| s.live(now)).cloned()
    }

    fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        let expires_at = ttl_secs.map(|s| Instant::now() + Duration::from_secs(s));
        lock(&self.items).insert(key, Stored { value, expires_at });
    }

    fn delete(&self, key: &str) -> bool {
        let now = Instant::now();
        lock(&self.items).remove(key).is_some_and(|s| s.live(now))
    }
}

/// The v2 service object: values may expire.
#[derive(Debug, Default)]
pub struct StoreV2 {
    map: ExpiringMap,
}

impl v2::Kv for StoreV2 {
    async fn get(&self, key: String) -> Option<String> {
        self.map.get(&key).map(|s| s.value)
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        self.map.put(key, value, ttl_secs);
    }

    async fn delete(&self, key: String) -> bool {
        self.map.delete(&key)
    }
}

/// The v3 service object: entries tell their expiry; keys can be listed.
#[derive(Debug, Default)]
pub struct StoreV3 {
    map: ExpiringMap,
}

impl v3::Kv for StoreV3 {
    async fn get(&self, key: String) -> Option<Entry> {
        let now = Instant::now();
        self.map.get(&key).map(|s| Entry {
            value: s.value,
            expiry: match s.expires_at {
                None => Expiry::Never,
                Some(at) => {
                    Expiry::InSecs(at.saturating_duration_since(now).as_secs_f64().ceil() as u64)
                }
            },
        })
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        self.map.put(key, value, ttl_secs);
    }

    async fn delete(&self, key: String) -> bool {
        self.map.delete(&key)
    }

    async fn keys(&self, prefix: String) -> Vec<String> {
        let now = Instant::now();
        lock(&self.map.items)
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, s)| s.live(now))
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
