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

pub mod compatible;
mod decode;
pub mod encoding;
mod fill;
mod record;
mod value;

pub use encoding::{Encoding, Field, MethodEncoding, Variant};

/// What a user type that appears in messages or state is on the wire: its
/// [`Encoding`]. Every type a versioned interface or state uses must have
/// one, and the lock file records it for every released version, so a
/// change anywhere in what a released version encodes breaks the build:
/// through aliases, consts, generics and types from other crates alike.
///
/// `#[derive(upshift::Schema)]` writes it from the type's fields (and its
/// serde attributes); state types get theirs from `#[upshift::state]`. For
/// a type from another crate, implement it by hand on a newtype, describing
/// its serde encoding exactly: a hand-written encoding is locked like any
/// other, so it must tell the truth.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no upshift schema",
    label = "used in a versioned definition",
    note = "derive it with #[derive(upshift::Schema)], so that its encoding is locked with the versions that use it; for a type from another crate, implement `upshift::schema::Schema` by hand on a newtype around it"
)]
pub trait Schema {
    /// How postcard encodes a value of this type.
    const ENCODING: &'static Encoding;
}

macro_rules! primitive_schema {
    ($($ty:ty => $e:ident),* $(,)?) => {
        $(impl Schema for $ty { const ENCODING: &'static Encoding = &Encoding::$e; })*
    };
}

primitive_schema!(
    bool => Bool,
    char => Char,
    u8 => U8,
    u16 => U16,
    u32 => U32,
    u64 => U64,
    u128 => U128,
    // postcard encodes `usize` and `isize` as 64-bit varints.
    usize => U64,
    i8 => I8,
    i16 => I16,
    i32 => I32,
    i64 => I64,
    i128 => I128,
    isize => I64,
    f32 => F32,
    f64 => F64,
    String => Str,
    std::path::PathBuf => Str,
    () => Unit,
);

/// `{secs, nanos}` in that order, as serde writes it.
impl Schema for std::time::Duration {
    const ENCODING: &'static Encoding = &Encoding::Struct(&[
        Field {
            name: "secs",
            encoding: &Encoding::U64,
        },
        Field {
            name: "nanos",
            encoding: &Encoding::U32,
        },
    ]);
}

impl Schema for std::time::SystemTime {
    const ENCODING: &'static Encoding = &Encoding::Struct(&[
        Field {
            name: "secs_since_epoch",
            encoding: &Encoding::U64,
        },
        Field {
            name: "nanos_since_epoch",
            encoding: &Encoding::U32,
        },
    ]);
}

// Addresses as serde writes them for binary formats: octets, and a port.
impl Schema for std::net::Ipv4Addr {
    const ENCODING: &'static Encoding = &Encoding::Array(&Encoding::U8, 4);
}
impl Schema for std::net::Ipv6Addr {
    const ENCODING: &'static Encoding = &Encoding::Array(&Encoding::U8, 16);
}
impl Schema for std::net::IpAddr {
    const ENCODING: &'static Encoding = &Encoding::Enum(&[
        Variant {
            name: "V4",
            fields: &[Field {
                name: "0",
                encoding: <std::net::Ipv4Addr as Schema>::ENCODING,
            }],
        },
        Variant {
            name: "V6",
            fields: &[Field {
                name: "0",
                encoding: <std::net::Ipv6Addr as Schema>::ENCODING,
            }],
        },
    ]);
}
impl Schema for std::net::SocketAddr {
    const ENCODING: &'static Encoding = &Encoding::Enum(&[
        Variant {
            name: "V4",
            fields: &[Field {
                name: "0",
                encoding: &Encoding::Tuple(&[
                    <std::net::Ipv4Addr as Schema>::ENCODING,
                    &Encoding::U16,
                ]),
            }],
        },
        Variant {
            name: "V6",
            fields: &[Field {
                name: "0",
                encoding: &Encoding::Tuple(&[
                    <std::net::Ipv6Addr as Schema>::ENCODING,
                    &Encoding::U16,
                ]),
            }],
        },
    ]);
}

impl<T: Schema> Schema for Option<T> {
    const ENCODING: &'static Encoding = &Encoding::Option(T::ENCODING);
}

macro_rules! seq_schema {
    ($($ty:ident),* $(,)?) => {
        $(impl<T: Schema> Schema for std::collections::$ty<T> {
            const ENCODING: &'static Encoding = &Encoding::Seq(T::ENCODING);
        })*
    };
}

seq_schema!(VecDeque, BTreeSet, HashSet);

impl<T: Schema> Schema for Vec<T> {
    const ENCODING: &'static Encoding = &Encoding::Seq(T::ENCODING);
}
impl<K: Schema, V: Schema> Schema for std::collections::BTreeMap<K, V> {
    const ENCODING: &'static Encoding = &Encoding::Map(K::ENCODING, V::ENCODING);
}
impl<K: Schema, V: Schema, S> Schema for std::collections::HashMap<K, V, S> {
    const ENCODING: &'static Encoding = &Encoding::Map(K::ENCODING, V::ENCODING);
}
/// A box is encoded as what it holds.
impl<T: Schema> Schema for Box<T> {
    const ENCODING: &'static Encoding = T::ENCODING;
}
impl<T: Schema, E: Schema> Schema for Result<T, E> {
    const ENCODING: &'static Encoding = &Encoding::Enum(&[
        Variant {
            name: "Ok",
            fields: &[Field {
                name: "0",
                encoding: T::ENCODING,
            }],
        },
        Variant {
            name: "Err",
            fields: &[Field {
                name: "0",
                encoding: E::ENCODING,
            }],
        },
    ]);
}
impl<T: Schema, const N: usize> Schema for [T; N] {
    const ENCODING: &'static Encoding = &Encoding::Array(T::ENCODING, N);
}

macro_rules! tuple_schema {
    ($(($($p:ident),+)),* $(,)?) => {
        $(impl<$($p: Schema),+> Schema for ($($p,)+) {
            const ENCODING: &'static Encoding = &Encoding::Tuple(&[$($p::ENCODING),+]);
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

/// Compile-time check the interface macro emits for every type in a
/// version; its dispatcher reads the encodings through it too, so a type
/// without a schema is one error at the type, not one per use of it.
#[doc(hidden)]
pub const fn require<T: Schema + ?Sized>() -> &'static Encoding {
    T::ENCODING
}

/// What a derived type's fields name for the type itself (`Vec<Self>`):
/// [`Encoding::Recurse`], so the encoding of a recursive type is finite.
#[doc(hidden)]
#[derive(Debug)]
pub struct Recurse;

impl Schema for Recurse {
    const ENCODING: &'static Encoding = &Encoding::Recurse;
}

#[doc(hidden)]
pub use decode::{Element, check_decoding, element};
// The conformance tests draw calls and states, and read replies, by encoding.
pub(crate) use decode::{Rng, draw_small};
#[doc(hidden)]
pub use fill::fill_lock;
pub(crate) use value::{same as same_value, shape_of, show as show_value, show_call};

/// A generic type's parameter, by position, where its own lock section
/// records its encoding: [`Encoding::Param`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Param<const I: usize>;

impl<const I: usize> Schema for Param<I> {
    const ENCODING: &'static Encoding = &Encoding::Param(I);
}
