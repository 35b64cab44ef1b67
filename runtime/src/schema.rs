//! Metadata the macros emit for every version — the input of compatibility
//! checks and version diff docs — and the [`Schema`] trait that describes
//! the shape of user types inside versioned definitions.
//!
//! The metadata types are defined once, in the internal `upshift-schema`
//! crate that the macros and the CLI share; they are re-exported here.

pub use upshift_schema::{
    ArgSchema, Change, InterfaceSchema, List, MemberChange, MemberSchema, MethodSchema, Origin,
    StateSchema, Text, TypeKind, TypeSchema, interface_json, interfaces_from_json, state_json,
    states_from_json,
};

/// What the macros report to `upshift check`, `lock` and `docs`, and the
/// lock file's format (internal to upshift's tools).
#[doc(hidden)]
pub use upshift_schema::{lock, report};

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
