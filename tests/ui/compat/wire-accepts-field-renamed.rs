// Generated from tests/tests/compat.rs (case `field-renamed`); edit the table there.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type Weight = u32;
pub type Key = String;
pub const SALT_LEN: usize = 2;

/// A hash written as text by its own serde code; its schema says so.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hash(pub String);

impl upshift::schema::Schema for Hash {
    const ENCODING: &'static upshift::schema::Encoding = &upshift::schema::Encoding::Str;
}

/// A number written as its decimal text.
pub mod as_text {
    pub fn serialize<S: serde::Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub struct Owner {
    pub ident: u32,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub struct Meta {
    pub owner: Owner,
    pub tags: Vec<String>,
    pub salt: [u8; SALT_LEN],
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub enum Kind {
    Plain,
    Counted(u64),
    Named { label: String },
}

/// Same shape as `upshift::schedule::Decision`.
#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub enum Decision {
    Go,
    Wait(String),
    Halt(String),
}

/// Shaped like `upshift`'s own `Outcome`, but with a wider version.
#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub enum Outcome {
    Upgraded { version: u64 },
    Failed { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub struct Entry {
    pub value: String,
    pub weight: Weight,
    pub meta: Meta,
    pub kind: Kind,
    pub hash: Hash,
    pub decision: Decision,
    pub outcome: Outcome,
    pub tag: Tag,
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "wire.lock")]
pub struct Node {
    pub label: String,
    pub children: Vec<Node>,
}

pub use inner::Tag;

pub mod inner {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
    #[upshift(lock = "inner.lock")]
    pub struct Tag(pub u8);
}

/// Types that share a name with locked ones, each with its own lock file.
pub mod elsewhere {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
    #[upshift(lock = "elsewhere.lock")]
    pub struct Owner {
        pub id: u64,
        pub name: String,
    }

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
    #[upshift(lock = "elsewhere.lock")]
    pub struct Tag(pub u16);
}

#[upshift::interface(lock = "wire.lock")]
pub mod store {
    use super::*;

    #[version(1)]
    pub trait Store {
        async fn get(&self, key: String) -> Option<Entry>;
        async fn list(&self, page: u32) -> Page<Entry>;
        async fn pair(&self, a: (u32, String), b: Box<u64>) -> BTreeMap<String, u64>;
        async fn count(&self) -> u64;
        async fn tree(&self) -> Node;
    }
}

#[upshift::state(lock = "wire.lock")]
pub mod db {
    use super::*;

    #[version(1)]
    pub struct Db {
        pub entries: BTreeMap<String, Entry>,
        pub total: Weight,
        pub log: Vec<Record>,
    }

    #[version(1)]
    pub struct Record {
        pub at: u64,
        pub what: String,
    }
}

fn main() {}
