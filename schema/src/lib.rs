//! Version metadata of upshift, defined once: what `#[upshift::interface]`
//! and `#[upshift::state]` record about every version, and its JSON.
//!
//! The macros build these values from the definitions they read and emit
//! them twice from the same value — as the `vN::SCHEMA` statics of the
//! user's crate and as JSON in their reports to `upshift docs` — so the two
//! cannot disagree. The runtime re-exports the types as `upshift::schema`
//! and renders diff pages from them; the CLI reads the JSON back into the
//! same types. Users depend on `upshift`, never on this crate directly.
//!
//! Text and lists are [`Cow`]s: borrowed `'static` data in the statics the
//! macros generate, owned data after deserialising.

pub mod lock;
pub mod report;
pub mod shape;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Text in metadata: `'static` in generated statics, owned when read from JSON.
pub type Text = Cow<'static, str>;
/// A list in metadata, borrowed or owned like [`Text`].
pub type List<T> = Cow<'static, [T]>;

/// How a method of version N relates to version N-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The first version declares every method as new.
    Added,
    /// Same name, argument types and return type as in N-1.
    Unchanged,
    /// Same name, but argument or return types differ from N-1.
    Changed,
}

/// One argument of a method, with its type as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArgSchema {
    /// Argument name.
    pub name: Text,
    /// Type, as the tokens the developer wrote.
    #[serde(rename = "type")]
    pub ty: Text,
}

/// One method of one interface version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MethodSchema {
    /// Method name.
    pub name: Text,
    /// Index on the wire: its position in the version's declaration order.
    pub index: u16,
    /// Arguments after `&self`.
    pub args: List<ArgSchema>,
    /// Return type as written; `()` when omitted.
    pub returns: Text,
    /// Relation to the previous version.
    pub change: Change,
}

/// One version of a service interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InterfaceSchema {
    /// Service name (the trait's name, or the `name` option).
    pub service: Text,
    /// Version number.
    pub version: u32,
    /// Doc comment of the version, if any.
    pub doc: Text,
    /// Methods in declaration order.
    pub methods: List<MethodSchema>,
    /// Methods of the previous version that this version no longer has.
    pub removed: List<Text>,
}

impl InterfaceSchema {
    /// The method with this wire index.
    pub fn method(&self, index: u16) -> Option<&MethodSchema> {
        self.methods.get(usize::from(index))
    }

    /// The method with this name.
    pub fn method_named(&self, name: &str) -> Option<&MethodSchema> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// One version of a versioned state, as `#[upshift::state]` records it in
/// each `vN::SCHEMA`: its types and how each came from version N-1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateSchema {
    /// The state's name (`NAME`).
    pub state: Text,
    /// Version number.
    pub version: u32,
    /// First line of the root type's doc comment, if any.
    pub doc: Text,
    /// Types in declaration order; the first is the root.
    pub types: List<TypeSchema>,
    /// Types of the previous version that no type of this one continues.
    pub removed: List<Text>,
}

impl StateSchema {
    /// The type with this name.
    pub fn type_named(&self, name: &str) -> Option<&TypeSchema> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// One type of a state version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeSchema {
    /// The type's name.
    pub name: Text,
    /// Struct or enum.
    pub kind: TypeKind,
    /// The canonical line locked for it: `struct Name { field: Type, .. }`.
    pub shape: Text,
    /// Where its values come from in an upgrade.
    pub origin: Origin,
    /// Fields or variants in declaration order.
    pub members: List<MemberSchema>,
    /// Members of the previous version's type that no member takes its value from.
    pub removed: List<Text>,
}

/// Whether a state type is a struct or an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    /// A struct: its members are fields.
    Struct,
    /// An enum: its members are variants.
    Enum,
}

/// Where the values of a state type come from in an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// No type of the previous version: the type is new (or the version is the first).
    New,
    /// Converted member by member from the previous version's type `from`
    /// (the same name unless renamed with `from = "..."`).
    Continues {
        /// The previous version's name of the type.
        from: Text,
    },
    /// Converted as a whole by the `transform = path` function.
    Transform {
        /// The previous version's name of the type.
        from: Text,
        /// The function, as written.
        with: Text,
    },
}

/// One field of a struct, or one variant of an enum, of a state version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberSchema {
    /// Field name (or position), or variant name.
    pub name: Text,
    /// A field's type; a variant's fields as written (`(u64)`, `{ a: u8 }`, or empty).
    #[serde(rename = "type")]
    pub ty: Text,
    /// How its value comes from the previous version.
    pub change: MemberChange,
}

/// How a member's value comes from the previous version: the transform
/// attribute (or the rule) that covers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MemberChange {
    /// Nothing to come from: the first version, a new type, or a new variant.
    New,
    /// Moved unchanged from the old member `from` (renamed when it differs).
    Kept {
        /// The old member's name.
        from: Text,
    },
    /// Same type as written, but it holds state types that changed, so each
    /// value goes through their transforms.
    Upgraded {
        /// The old member's name.
        from: Text,
    },
    /// Converted from the old member by `with = path`.
    Converted {
        /// The old member's name.
        from: Text,
        /// The old member's type.
        #[serde(rename = "from_type")]
        from_ty: Text,
        /// The function, as written.
        with: Text,
    },
    /// Added: starts from `default` (`with` is `None`) or `default = path`.
    Defaulted {
        /// The function named by `default = path`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Text>,
    },
    /// An enum variant whose fields changed; each field is converted by its own rule.
    Reshaped {
        /// The old variant's name.
        from: Text,
    },
    /// Covered by the type's `transform` function.
    ByTransform,
}

/// Every version of one interface as JSON, one line: what `upshift docs
/// --json` writes and what the macros report to it.
pub fn interface_json<'a>(versions: impl IntoIterator<Item = &'a InterfaceSchema>) -> String {
    to_json(versions.into_iter().collect())
}

/// Every version of one state as JSON, one line; see [`interface_json`].
pub fn state_json<'a>(versions: impl IntoIterator<Item = &'a StateSchema>) -> String {
    to_json(versions.into_iter().collect())
}

fn to_json<T: Serialize>(items: Vec<&T>) -> String {
    // Only strings, numbers and lists: serialising cannot fail.
    let mut out = serde_json::to_string(&items).unwrap_or_else(|e| format!("{{\"error\":{e:?}}}"));
    out.push('\n');
    out
}

/// Reads what [`interface_json`] wrote.
pub fn interfaces_from_json(json: &str) -> Result<Vec<InterfaceSchema>, serde_json::Error> {
    serde_json::from_str(json)
}

/// Reads what [`state_json`] wrote.
pub fn states_from_json(json: &str) -> Result<Vec<StateSchema>, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    static V1: InterfaceSchema = InterfaceSchema {
        service: Cow::Borrowed("Kv"),
        version: 1,
        doc: Cow::Borrowed("v1: \"strings\"\n"),
        methods: Cow::Borrowed(&[MethodSchema {
            name: Cow::Borrowed("get"),
            index: 0,
            args: Cow::Borrowed(&[ArgSchema {
                name: Cow::Borrowed("key"),
                ty: Cow::Borrowed("String"),
            }]),
            returns: Cow::Borrowed("Option<String>"),
            change: Change::Added,
        }]),
        removed: Cow::Borrowed(&[]),
    };

    #[test]
    fn statics_and_their_json_round_trip() {
        let json = interface_json([&V1]);
        assert_eq!(
            json,
            "[{\"service\":\"Kv\",\"version\":1,\"doc\":\"v1: \\\"strings\\\"\\n\",\"methods\":[{\"name\":\"get\",\"index\":0,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"Option<String>\",\"change\":\"added\"}],\"removed\":[]}]\n"
        );
        let back = interfaces_from_json(&json).expect("reads");
        assert_eq!(back, vec![V1.clone()]);
    }

    #[test]
    fn member_changes_are_tagged_by_kind() {
        let types = [TypeSchema {
            name: "Entry".into(),
            kind: TypeKind::Struct,
            shape: "struct Entry { v: u8 }".into(),
            origin: Origin::Continues {
                from: "Item".into(),
            },
            members: vec![
                MemberSchema {
                    name: "v".into(),
                    ty: "u8".into(),
                    change: MemberChange::Defaulted { with: None },
                },
                MemberSchema {
                    name: "w".into(),
                    ty: "u16".into(),
                    change: MemberChange::Converted {
                        from: "x".into(),
                        from_ty: "u8".into(),
                        with: "widen".into(),
                    },
                },
            ]
            .into(),
            removed: vec!["gone".into()].into(),
        }];
        let state = StateSchema {
            state: "kv".into(),
            version: 2,
            doc: "".into(),
            types: types.to_vec().into(),
            removed: Cow::Borrowed(&[]),
        };
        let json = state_json([&state]);
        assert!(
            json.contains("\"origin\":{\"kind\":\"continues\",\"from\":\"Item\"}"),
            "{json}"
        );
        assert!(
            json.contains("\"change\":{\"kind\":\"defaulted\"}"),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"kind\":\"converted\",\"from\":\"x\",\"from_type\":\"u8\",\"with\":\"widen\"}"
            ),
            "{json}"
        );
        assert_eq!(states_from_json(&json).expect("reads"), vec![state]);
        assert!(states_from_json("[{\"state\":1}]").is_err());
    }
}
