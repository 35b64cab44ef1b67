//! Metadata the interface macro emits for every version: the input of
//! compatibility checks and version diff docs.

/// How a method of version N relates to version N-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The first version declares every method as new.
    Added,
    /// Same name, argument types and return type as in N-1.
    Unchanged,
    /// Same name, but argument or return types differ from N-1.
    Changed,
}

/// One argument of a method, with its type as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgSchema {
    /// Argument name.
    pub name: &'static str,
    /// Type, as the tokens the developer wrote.
    pub ty: &'static str,
}

/// One method of one interface version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodSchema {
    /// Method name.
    pub name: &'static str,
    /// Index on the wire: its position in the version's declaration order.
    pub index: u16,
    /// Arguments after `&self`.
    pub args: &'static [ArgSchema],
    /// Return type as written; `()` when omitted.
    pub returns: &'static str,
    /// Relation to the previous version.
    pub change: Change,
}

/// One version of a service interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceSchema {
    /// Service name (the trait's name).
    pub service: &'static str,
    /// Version number.
    pub version: u32,
    /// Doc comment of the version, if any.
    pub doc: &'static str,
    /// Methods in declaration order.
    pub methods: &'static [MethodSchema],
    /// Methods of the previous version that this version no longer has.
    pub removed: &'static [&'static str],
}

impl InterfaceSchema {
    /// The method with this wire index.
    pub fn method(&self, index: u16) -> Option<&'static MethodSchema> {
        self.methods.get(usize::from(index))
    }

    /// The method with this name.
    pub fn method_named(&self, name: &str) -> Option<&'static MethodSchema> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// One version of a versioned state, as `#[upshift::state]` records it in
/// each `vN::SCHEMA`: its types and how each came from version N-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateSchema {
    /// The state's name (`NAME`).
    pub state: &'static str,
    /// Version number.
    pub version: u32,
    /// First line of the root type's doc comment, if any.
    pub doc: &'static str,
    /// Types in declaration order; the first is the root.
    pub types: &'static [TypeSchema],
    /// Types of the previous version that no type of this one continues.
    pub removed: &'static [&'static str],
}

impl StateSchema {
    /// The type with this name.
    pub fn type_named(&self, name: &str) -> Option<&'static TypeSchema> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// One type of a state version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeSchema {
    /// The type's name.
    pub name: &'static str,
    /// Struct or enum.
    pub kind: TypeKind,
    /// The canonical line locked for it: `struct Name { field: Type, .. }`.
    pub shape: &'static str,
    /// Where its values come from in an upgrade.
    pub origin: Origin,
    /// Fields or variants in declaration order.
    pub members: &'static [MemberSchema],
    /// Members of the previous version's type that no member takes its value from.
    pub removed: &'static [&'static str],
}

/// Whether a state type is a struct or an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// A struct: its members are fields.
    Struct,
    /// An enum: its members are variants.
    Enum,
}

/// Where the values of a state type come from in an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// No type of the previous version: the type is new (or the version is the first).
    New,
    /// Converted member by member from the previous version's type `from`
    /// (the same name unless renamed with `from = "..."`).
    Continues {
        /// The previous version's name of the type.
        from: &'static str,
    },
    /// Converted as a whole by the `transform = path` function.
    Transform {
        /// The previous version's name of the type.
        from: &'static str,
        /// The function, as written.
        with: &'static str,
    },
}

/// One field of a struct, or one variant of an enum, of a state version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberSchema {
    /// Field name (or position), or variant name.
    pub name: &'static str,
    /// A field's type; a variant's fields as written (`(u64)`, `{ a: u8 }`, or empty).
    pub ty: &'static str,
    /// How its value comes from the previous version.
    pub change: MemberChange,
}

/// How a member's value comes from the previous version: the transform
/// attribute (or the rule) that covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberChange {
    /// Nothing to come from: the first version, a new type, or a new variant.
    New,
    /// Moved unchanged from the old member `from` (renamed when it differs).
    Kept {
        /// The old member's name.
        from: &'static str,
    },
    /// Same type as written, but it holds state types that changed, so each
    /// value goes through their transforms.
    Upgraded {
        /// The old member's name.
        from: &'static str,
    },
    /// Converted from the old member by `with = path`.
    Converted {
        /// The old member's name.
        from: &'static str,
        /// The old member's type.
        from_ty: &'static str,
        /// The function, as written.
        with: &'static str,
    },
    /// Added: starts from `default` (`with` is `None`) or `default = path`.
    Defaulted {
        /// The function named by `default = path`, if any.
        with: Option<&'static str>,
    },
    /// An enum variant whose fields changed; each field is converted by its own rule.
    Reshaped {
        /// The old variant's name.
        from: &'static str,
    },
    /// Covered by the type's `transform` function.
    ByTransform,
}

/// The shape of a user type that appears in messages or state, as
/// `#[derive(upshift::Schema)]` records it: one line per field or variant.
/// Every type a versioned interface or state uses must have one, and so must
/// every field of a deriving type: the whole reachable shape is locked.
/// The derive also checks the shape against the crate's lock file, so a
/// released type cannot change unnoticed. State types get theirs from
/// `#[upshift::state]`. For a type from another crate, implement it by hand
/// on a newtype, with lines that describe its wire form (a hand-written
/// shape is not locked).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no upshift schema",
    label = "used in a versioned definition",
    note = "derive it with #[derive(upshift::Schema)], so that its shape is locked with the versions that use it; for a type from another crate, implement `upshift::schema::Schema` by hand on a newtype around it"
)]
pub trait Schema {
    /// Canonical lines: `field name: Type`, or `variant Name(...)`.
    const SHAPE: &'static [&'static str];
}

/// Standard types have a fixed shape: nothing to lock.
macro_rules! std_schema {
    ($($ty:ty),* $(,)?) => { $(impl Schema for $ty { const SHAPE: &'static [&'static str] = &[]; })* };
}

std_schema!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    (),
    std::time::Duration,
    std::time::SystemTime,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    std::path::PathBuf,
);

macro_rules! generic_schema {
    ($($ty:ident<$($p:ident),+>),* $(,)?) => {
        $(impl<$($p: Schema),+> Schema for std::collections::$ty<$($p),+> {
            const SHAPE: &'static [&'static str] = &[];
        })*
    };
}

generic_schema!(BTreeMap<K, V>, HashMap<K, V>, BTreeSet<T>, HashSet<T>, VecDeque<T>);

impl<T: Schema> Schema for Option<T> {
    const SHAPE: &'static [&'static str] = &[];
}
impl<T: Schema> Schema for Vec<T> {
    const SHAPE: &'static [&'static str] = &[];
}
impl<T: Schema + ?Sized> Schema for Box<T> {
    const SHAPE: &'static [&'static str] = &[];
}
impl<T: Schema, E: Schema> Schema for Result<T, E> {
    const SHAPE: &'static [&'static str] = &[];
}
impl<T: Schema, const N: usize> Schema for [T; N] {
    const SHAPE: &'static [&'static str] = &[];
}

macro_rules! tuple_schema {
    ($(($($p:ident),+)),* $(,)?) => {
        $(impl<$($p: Schema),+> Schema for ($($p,)+) {
            const SHAPE: &'static [&'static str] = &[];
        })*
    };
}

tuple_schema!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F)
);

/// Compile-time check the interface macro emits for every type in a version.
#[doc(hidden)]
pub const fn require<T: Schema + ?Sized>() {}
