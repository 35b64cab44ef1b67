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

/// The shape of a user type that appears in messages or state, as
/// `#[derive(upshift::Schema)]` records it: one line per field or variant.
/// Every type a versioned interface uses must have one.
/// The derive also checks the shape against the crate's lock file, so a
/// released type cannot change unnoticed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no upshift schema",
    label = "used in a versioned interface",
    note = "derive it with #[derive(upshift::Schema)], so that its shape is locked with the versions that use it"
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
    ()
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
