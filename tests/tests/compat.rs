//! The compatibility corpus: one released fixture (`BASE`, locked in
//! `ui/compat/compat.lock`) and one case per change a user might make to it.
//! A case that changes what a released version encodes must fail the build
//! with the message in its `.stderr`; a respelling that encodes the same
//! must build. Each case is written to `ui/compat/<name>.rs` from the table
//! below (the table is the source; the files are what trybuild compiles).

use std::path::Path;

/// The released fixture: user types three levels deep, an alias, a const
/// array length, a generic type, a recursive type, a hand-written schema,
/// same-named and same-shaped types elsewhere, an interface and a state.
const BASE: &str = r#"use std::collections::BTreeMap;

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
#[upshift(lock = "compat.lock")]
pub struct Owner {
    pub id: u32,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
pub struct Meta {
    pub owner: Owner,
    pub tags: Vec<String>,
    pub salt: [u8; SALT_LEN],
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
pub enum Kind {
    Plain,
    Counted(u64),
    Named { label: String },
}

/// Same shape as `upshift::schedule::Decision`.
#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
pub enum Decision {
    Go,
    Wait(String),
    Halt(String),
}

/// Shaped like `upshift`'s own `Outcome`, but with a wider version.
#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
pub enum Outcome {
    Upgraded { version: u64 },
    Failed { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
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
#[upshift(lock = "compat.lock")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, upshift::Schema)]
#[upshift(lock = "compat.lock")]
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

#[upshift::interface(lock = "compat.lock")]
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

#[upshift::state(lock = "compat.lock")]
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
"#;

/// One change to `BASE`: each `(from, to)` replaces text that occurs once.
struct Case {
    name: &'static str,
    edits: &'static [(&'static str, &'static str)],
}

/// Changes that break a released version: the build fails, naming the path,
/// old → new, and the versions they break.
const BREAKS: &[Case] = &[
    // Aliases and consts resolve to what is encoded.
    Case {
        name: "alias-to-signed",
        edits: &[("pub type Weight = u32;", "pub type Weight = i32;")],
    },
    Case {
        name: "alias-to-float",
        edits: &[("pub type Weight = u32;", "pub type Weight = f64;")],
    },
    Case {
        name: "alias-to-wider",
        edits: &[("pub type Weight = u32;", "pub type Weight = u64;")],
    },
    Case {
        name: "const-array-length",
        edits: &[(
            "pub const SALT_LEN: usize = 2;",
            "pub const SALT_LEN: usize = 3;",
        )],
    },
    Case {
        name: "literal-array-length",
        edits: &[("pub salt: [u8; SALT_LEN],", "pub salt: [u8; 4],")],
    },
    // Same-named types from elsewhere.
    Case {
        name: "same-name-other-module",
        edits: &[(
            "    pub owner: Owner,\n    pub tags",
            "    pub owner: elsewhere::Owner,\n    pub tags",
        )],
    },
    Case {
        name: "same-name-other-crate",
        edits: &[(
            "    pub outcome: Outcome,",
            "    pub outcome: upshift::upgrade::api::Outcome,",
        )],
    },
    Case {
        name: "re-export-retargeted",
        edits: &[("pub use inner::Tag;", "pub use elsewhere::Tag;")],
    },
    // A hand-written schema is locked like a derived one.
    Case {
        name: "hand-written-schema-changed",
        edits: &[
            (
                "pub struct Hash(pub String);",
                "pub struct Hash(pub [u8; 32]);",
            ),
            (
                "&upshift::schema::Encoding::Str;",
                "&upshift::schema::Encoding::Array(&upshift::schema::Encoding::U8, 32);",
            ),
        ],
    },
    // Serde attributes: modelled, or refused with the reason.
    Case {
        name: "serde-skip",
        edits: &[(
            "    pub tags: Vec<String>,",
            "    #[serde(skip)]\n    pub tags: Vec<String>,",
        )],
    },
    Case {
        name: "serde-with-undeclared",
        edits: &[(
            "    pub id: u32,",
            "    #[serde(with = \"as_text\")]\n    pub id: u32,",
        )],
    },
    Case {
        name: "serde-with-declared",
        edits: &[(
            "    pub id: u32,",
            "    #[serde(with = \"as_text\")]\n    #[upshift(encoded_as = String)]\n    pub id: u32,",
        )],
    },
    Case {
        name: "serde-serialize-with",
        edits: &[(
            "    pub id: u32,",
            "    #[serde(serialize_with = \"as_text::serialize\")]\n    pub id: u32,",
        )],
    },
    Case {
        name: "serde-tag",
        edits: &[(
            "pub enum Kind {",
            "#[serde(tag = \"type\")]\npub enum Kind {",
        )],
    },
    Case {
        name: "serde-adjacent-tag",
        edits: &[(
            "pub enum Kind {",
            "#[serde(tag = \"t\", content = \"c\")]\npub enum Kind {",
        )],
    },
    Case {
        name: "serde-untagged",
        edits: &[("pub enum Kind {", "#[serde(untagged)]\npub enum Kind {")],
    },
    Case {
        name: "serde-flatten",
        edits: &[(
            "    pub meta: Meta,",
            "    #[serde(flatten)]\n    pub meta: Meta,",
        )],
    },
    Case {
        name: "serde-skip-serializing-if",
        edits: &[(
            "    pub next: Option<String>,",
            "    #[serde(skip_serializing_if = \"Option::is_none\")]\n    pub next: Option<String>,",
        )],
    },
    Case {
        name: "serde-skip-deserializing",
        edits: &[(
            "    pub tags: Vec<String>,",
            "    #[serde(skip_deserializing)]\n    pub tags: Vec<String>,",
        )],
    },
    Case {
        name: "serde-from",
        edits: &[(
            "#[upshift(lock = \"compat.lock\")]\npub struct Owner {",
            "#[upshift(lock = \"compat.lock\")]\n#[serde(from = \"u32\")]\npub struct Owner {",
        )],
    },
    Case {
        name: "serde-other-variant",
        edits: &[(
            "    Plain,\n    Counted",
            "    #[serde(other)]\n    Plain,\n    Counted",
        )],
    },
    Case {
        name: "serde-state-field-skip",
        edits: &[(
            "        pub total: Weight,",
            "        #[serde(skip)]\n        pub total: Weight,",
        )],
    },
    Case {
        name: "serde-state-field-flatten",
        edits: &[(
            "        pub what: String,",
            "        #[serde(flatten)]\n        pub what: String,",
        )],
    },
    // Reorders: postcard encodes by position.
    Case {
        name: "fields-reordered",
        edits: &[(
            "    pub id: u32,\n    pub name: String,",
            "    pub name: String,\n    pub id: u32,",
        )],
    },
    Case {
        name: "variants-reordered",
        edits: &[(
            "    Plain,\n    Counted(u64),",
            "    Counted(u64),\n    Plain,",
        )],
    },
    Case {
        name: "methods-reordered",
        edits: &[
            (
                "        async fn get(&self, key: String) -> Option<Entry>;\n",
                "",
            ),
            (
                "        async fn tree(&self) -> Node;",
                "        async fn tree(&self) -> Node;\n        async fn get(&self, key: String) -> Option<Entry>;",
            ),
        ],
    },
    Case {
        name: "state-fields-reordered",
        edits: &[(
            "        pub at: u64,\n        pub what: String,",
            "        pub what: String,\n        pub at: u64,",
        )],
    },
    // Deep inside containers.
    Case {
        name: "nested-three-deep",
        edits: &[("    pub id: u32,", "    pub id: u64,")],
    },
    Case {
        name: "tuple-element",
        edits: &[("a: (u32, String)", "a: (u64, String)")],
    },
    Case {
        name: "tuple-arity",
        edits: &[("a: (u32, String)", "a: (u32, String, bool)")],
    },
    Case {
        name: "box-inner",
        edits: &[("b: Box<u64>", "b: Box<u32>")],
    },
    Case {
        name: "map-value",
        edits: &[("-> BTreeMap<String, u64>", "-> BTreeMap<String, i64>")],
    },
    Case {
        name: "map-key",
        edits: &[("-> BTreeMap<String, u64>", "-> BTreeMap<u64, u64>")],
    },
    Case {
        name: "option-removed",
        edits: &[("-> Option<Entry>;", "-> Entry;")],
    },
    Case {
        name: "vec-to-option",
        edits: &[(
            "    pub tags: Vec<String>,",
            "    pub tags: Option<String>,",
        )],
    },
    Case {
        name: "generic-argument",
        edits: &[("-> Page<Entry>;", "-> Page<String>;")],
    },
    Case {
        name: "generic-field",
        edits: &[(
            "    pub next: Option<String>,",
            "    pub next: Option<u64>,",
        )],
    },
    Case {
        name: "recursive-field",
        edits: &[(
            "    pub children: Vec<Node>,",
            "    pub children: Option<Box<Node>>,",
        )],
    },
    Case {
        name: "std-type-for-alias",
        edits: &[(
            "    pub weight: Weight,",
            "    pub weight: std::time::Duration,",
        )],
    },
    Case {
        name: "state-field-type",
        edits: &[("        pub at: u64,", "        pub at: i64,")],
    },
    // Members added, removed, renamed.
    Case {
        name: "variant-field-type",
        edits: &[("    Counted(u64),", "    Counted(u32),")],
    },
    Case {
        name: "variant-added",
        edits: &[(
            "    Named { label: String },",
            "    Named { label: String },\n    Extra,",
        )],
    },
    Case {
        name: "variant-removed",
        edits: &[("    Plain,\n    Counted", "    Counted")],
    },
    Case {
        name: "variant-renamed",
        edits: &[("    Plain,\n    Counted", "    Simple,\n    Counted")],
    },
    Case {
        name: "variant-struct-to-tuple",
        edits: &[("    Named { label: String },", "    Named(String),")],
    },
    Case {
        name: "field-added",
        edits: &[(
            "    pub salt: [u8; SALT_LEN],",
            "    pub salt: [u8; SALT_LEN],\n    pub extra: bool,",
        )],
    },
    Case {
        name: "field-removed",
        edits: &[("    pub tags: Vec<String>,\n", "")],
    },
    Case {
        name: "field-renamed",
        edits: &[("    pub tags: Vec<String>,", "    pub labels: Vec<String>,")],
    },
    Case {
        name: "method-argument-renamed",
        edits: &[("fn get(&self, key: String)", "fn get(&self, name: String)")],
    },
    Case {
        name: "method-renamed",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn size(&self) -> u64;",
        )],
    },
    Case {
        name: "method-added",
        edits: &[(
            "        async fn tree(&self) -> Node;",
            "        async fn tree(&self) -> Node;\n        async fn clear(&self) -> ();",
        )],
    },
    Case {
        name: "method-removed",
        edits: &[("        async fn count(&self) -> u64;\n", "")],
    },
    Case {
        name: "return-type",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn count(&self) -> u32;",
        )],
    },
    Case {
        name: "argument-added",
        edits: &[(
            "fn list(&self, page: u32)",
            "fn list(&self, page: u32, size: u32)",
        )],
    },
];

/// Respellings that encode exactly the same: the build passes.
const HARMLESS: &[Case] = &[
    Case {
        name: "std-path-spelling",
        edits: &[(
            "    pub value: String,",
            "    pub value: std::string::String,",
        )],
    },
    Case {
        name: "alias-of-same-type",
        edits: &[("fn get(&self, key: String)", "fn get(&self, key: Key)")],
    },
    Case {
        name: "alias-by-path",
        edits: &[(
            "fn get(&self, key: String)",
            "fn get(&self, key: crate::Key)",
        )],
    },
    Case {
        name: "tuple-trailing-comma",
        edits: &[("a: (u32, String)", "a: (u32, String,)")],
    },
    Case {
        name: "generic-parameter-renamed",
        edits: &[(
            "pub struct Page<T> {\n    pub items: Vec<T>,",
            "pub struct Page<U> {\n    pub items: Vec<U>,",
        )],
    },
    Case {
        name: "array-length-literal-same-value",
        edits: &[("pub salt: [u8; SALT_LEN],", "pub salt: [u8; 2],")],
    },
    Case {
        name: "box-to-plain",
        edits: &[("b: Box<u64>", "b: u64")],
    },
    Case {
        name: "btreemap-to-hashmap",
        edits: &[(
            "-> BTreeMap<String, u64>",
            "-> std::collections::HashMap<String, u64>",
        )],
    },
    Case {
        name: "usize-for-u64",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn count(&self) -> usize;",
        )],
    },
    Case {
        name: "serde-rename",
        edits: &[(
            "    pub id: u32,",
            "    #[serde(rename = \"ident\")]\n    pub id: u32,",
        )],
    },
    Case {
        name: "serde-default",
        edits: &[(
            "    pub tags: Vec<String>,",
            "    #[serde(default)]\n    pub tags: Vec<String>,",
        )],
    },
    Case {
        name: "serde-rename-all",
        edits: &[(
            "pub enum Kind {",
            "#[serde(rename_all = \"snake_case\")]\npub enum Kind {",
        )],
    },
    Case {
        name: "same-shape-other-crate",
        edits: &[(
            "    pub decision: Decision,",
            "    pub decision: upshift::schedule::Decision,",
        )],
    },
    Case {
        name: "self-for-own-name",
        edits: &[(
            "    pub children: Vec<Node>,",
            "    pub children: Vec<Self>,",
        )],
    },
    Case {
        name: "unit-variant-braces",
        edits: &[("    Plain,\n    Counted", "    Plain {},\n    Counted")],
    },
    Case {
        name: "doc-comments",
        edits: &[("    pub id: u32,", "    /// Who owns it.\n    pub id: u32,")],
    },
    Case {
        name: "type-moved-to-module",
        edits: &[(
            "#[derive(Debug, Clone, Default, Serialize, Deserialize, upshift::Schema)]\n#[upshift(lock = \"compat.lock\")]\npub struct Owner {\n    pub id: u32,\n    pub name: String,\n}",
            "pub use people::Owner;\n\npub mod people {\n    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, upshift::Schema)]\n    #[upshift(lock = \"compat.lock\")]\n    pub struct Owner {\n        pub id: u32,\n        pub name: String,\n    }\n}",
        )],
    },
    Case {
        name: "state-alias-spelled-out",
        edits: &[("        pub total: Weight,", "        pub total: u32,")],
    },
];

/// Under `compatibility wire` (`ui/compat/wire.lock`, the same sections as
/// `compat.lock`): changes whose bytes every released version reads alike.
const WIRE_ACCEPTS: &[Case] = &[
    Case {
        name: "field-renamed",
        edits: &[("pub id: u32,", "pub ident: u32,")],
    },
    Case {
        name: "variant-renamed",
        edits: &[("    Plain,\n", "    Simple,\n")],
    },
    Case {
        name: "variant-field-renamed",
        edits: &[("Named { label: String }", "Named { text: String }")],
    },
    Case {
        name: "method-renamed",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn size(&self) -> u64;",
        )],
    },
    Case {
        name: "argument-renamed",
        edits: &[("fn get(&self, key: String)", "fn get(&self, name: String)")],
    },
    Case {
        name: "alias-widened",
        edits: &[("pub type Weight = u32;", "pub type Weight = u64;")],
    },
    Case {
        name: "reply-widened",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn count(&self) -> u128;",
        )],
    },
    Case {
        name: "struct-to-tuple-struct",
        edits: &[(
            "pub struct Owner {\n    pub id: u32,\n    pub name: String,\n}",
            "pub struct Owner(pub u32, pub String);",
        )],
    },
    Case {
        name: "arguments-regrouped",
        edits: &[(
            "async fn pair(&self, a: (u32, String), b: Box<u64>)",
            "async fn pair(&self, id: u32, rest: (String, u64))",
        )],
    },
    Case {
        name: "state-field-renamed",
        edits: &[("pub at: u64,", "pub when: u64,")],
    },
    Case {
        name: "recursive-field-renamed",
        edits: &[("pub children: Vec<Node>,", "pub kids: Vec<Node>,")],
    },
];

/// Under `compatibility wire`: changes some released bytes no longer read
/// alike under, each named with its place.
const WIRE_BREAKS: &[Case] = &[
    Case {
        name: "alias-to-signed",
        edits: &[("pub type Weight = u32;", "pub type Weight = i32;")],
    },
    Case {
        name: "reply-narrowed",
        edits: &[(
            "async fn count(&self) -> u64;",
            "async fn count(&self) -> u32;",
        )],
    },
    Case {
        name: "field-added",
        edits: &[("pub id: u32,", "pub id: u32,\n    pub email: String,")],
    },
    Case {
        name: "variant-added",
        edits: &[("    Plain,\n", "    Plain,\n    Other,\n")],
    },
    Case {
        name: "variants-swapped",
        edits: &[(
            "    Wait(String),\n    Halt(String),",
            "    Halt(String),\n    Wait(String),",
        )],
    },
    Case {
        name: "method-added",
        edits: &[(
            "        async fn tree(&self) -> Node;",
            "        async fn tree(&self) -> Node;\n        async fn clear(&self) -> ();",
        )],
    },
    Case {
        name: "methods-swapped",
        edits: &[(
            "        async fn count(&self) -> u64;\n        async fn tree(&self) -> Node;",
            "        async fn tree(&self) -> Node;\n        async fn count(&self) -> u64;",
        )],
    },
    Case {
        name: "argument-removed",
        edits: &[(
            "async fn pair(&self, a: (u32, String), b: Box<u64>)",
            "async fn pair(&self, a: (u32, String))",
        )],
    },
    Case {
        name: "option-to-vec",
        edits: &[(
            "async fn get(&self, key: String) -> Option<Entry>;",
            "async fn get(&self, key: String) -> Vec<Entry>;",
        )],
    },
    Case {
        name: "state-fields-swapped",
        edits: &[(
            "        pub at: u64,\n        pub what: String,",
            "        pub what: String,\n        pub at: u64,",
        )],
    },
];

/// `BASE` locked in `wire.lock` instead of `compat.lock`.
fn wire_base() -> String {
    BASE.replace("\"compat.lock\"", "\"wire.lock\"")
}

fn source_from(base: &str, case: &Case) -> String {
    let mut text = base.to_string();
    for (from, to) in case.edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "case `{}`: `{from}` must occur exactly once in the base",
            case.name
        );
        text = text.replacen(from, to, 1);
    }
    assert_ne!(text, base, "case `{}` changes nothing", case.name);
    format!(
        "// Generated from tests/tests/compat.rs (case `{}`); edit the table there.\n{text}",
        case.name
    )
}

/// Writes `text` to `path` unless it is there already.
fn materialize(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("write a corpus case");
    }
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/compat");
    // `wire.lock` is `compat.lock` under `compatibility wire`.
    let locked = std::fs::read_to_string(dir.join("compat.lock")).expect("compat.lock");
    let (header, sections) = locked.split_once("\n\n[").expect("sections in compat.lock");
    materialize(
        &dir.join("wire.lock"),
        &format!("{header}\ncompatibility wire\n\n[{sections}"),
    );
    let t = trybuild::TestCases::new();
    let mut expected = Vec::new();
    let wire = wire_base();
    for (base, prefix, breaks, passes) in [
        (BASE, "", ("breaks", BREAKS), ("harmless", HARMLESS)),
        (
            wire.as_str(),
            "wire-",
            ("breaks", WIRE_BREAKS),
            ("accepts", WIRE_ACCEPTS),
        ),
    ] {
        let name = format!("{prefix}base.rs");
        materialize(
            &dir.join(&name),
            &format!("// Generated from tests/tests/compat.rs (the released base).\n{base}"),
        );
        t.pass(format!("ui/compat/{name}"));
        expected.push(name);
        for ((kind, cases), fails) in [(breaks, true), (passes, false)] {
            for case in cases {
                let name = format!("{prefix}{kind}-{}.rs", case.name);
                materialize(&dir.join(&name), &source_from(base, case));
                let path = format!("ui/compat/{name}");
                if fails {
                    t.compile_fail(&path);
                    expected.push(name.replace(".rs", ".stderr"));
                } else {
                    t.pass(&path);
                }
                expected.push(name);
            }
        }
    }
    // A case removed from the table leaves no stale file behind.
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.ends_with(".lock") || expected.contains(&name),
            "ui/compat/{name} is no case of the table in tests/tests/compat.rs; delete it"
        );
    }
    assert!(
        BREAKS.len() + HARMLESS.len() >= 60,
        "the corpus keeps at least 60 cases"
    );
}
