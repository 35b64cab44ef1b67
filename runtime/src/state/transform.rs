//! The transform between neighbouring state versions, and how it reaches
//! through the containers that hold a changed type.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// Converts a value of the previous version's type into this version's.
///
/// `#[upshift::state]` implements it for every type that has a predecessor;
/// upshift implements it for `Vec`, `VecDeque`, `Option`, `Box` and the
/// values of `BTreeMap` and `HashMap`, so a field such as
/// `BTreeMap<String, Entry>` transforms through `Entry`'s transform.
pub trait Upgrade<Old>: Sized {
    /// Transforms `old`; fails with the step, type and field that failed.
    fn upgrade(old: Old) -> Result<Self, TransformError>;
}

impl<T: Upgrade<U>, U> Upgrade<Vec<U>> for Vec<T> {
    fn upgrade(old: Vec<U>) -> Result<Self, TransformError> {
        old.into_iter().map(T::upgrade).collect()
    }
}

impl<T: Upgrade<U>, U> Upgrade<VecDeque<U>> for VecDeque<T> {
    fn upgrade(old: VecDeque<U>) -> Result<Self, TransformError> {
        old.into_iter().map(T::upgrade).collect()
    }
}

impl<T: Upgrade<U>, U> Upgrade<Option<U>> for Option<T> {
    fn upgrade(old: Option<U>) -> Result<Self, TransformError> {
        old.map(T::upgrade).transpose()
    }
}

impl<T: Upgrade<U>, U> Upgrade<Box<U>> for Box<T> {
    fn upgrade(old: Box<U>) -> Result<Self, TransformError> {
        T::upgrade(*old).map(Box::new)
    }
}

impl<K: Ord, V: Upgrade<U>, U> Upgrade<BTreeMap<K, U>> for BTreeMap<K, V> {
    fn upgrade(old: BTreeMap<K, U>) -> Result<Self, TransformError> {
        old.into_iter()
            .map(|(k, v)| Ok((k, V::upgrade(v)?)))
            .collect()
    }
}

impl<K: Eq + Hash, V: Upgrade<U>, U, S: BuildHasher + Default> Upgrade<HashMap<K, U, S>>
    for HashMap<K, V, S>
{
    fn upgrade(old: HashMap<K, U, S>) -> Result<Self, TransformError> {
        old.into_iter()
            .map(|(k, v)| Ok((k, V::upgrade(v)?)))
            .collect()
    }
}

/// A transform step that failed: which step, which type, which field, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    /// The version transformed from.
    pub from: u32,
    /// The version transformed to.
    pub to: u32,
    /// The type whose transform failed.
    pub type_name: &'static str,
    /// The field (or variant) whose conversion failed, if one did.
    pub field: Option<&'static str>,
    /// What the conversion function said.
    pub reason: String,
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transform v{} -> v{} of `{}`",
            self.from, self.to, self.type_name
        )?;
        if let Some(field) = self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, " failed: {}", self.reason)
    }
}

impl std::error::Error for TransformError {}

/// The result of a `with = f` or `transform = f` function: the value itself,
/// or a `Result` whose error explains the failure.
pub trait Outcome<T> {
    /// The value, or the reason it could not be produced.
    fn into_outcome(self) -> Result<T, String>;
}

impl<T> Outcome<T> for T {
    fn into_outcome(self) -> Result<T, String> {
        Ok(self)
    }
}

impl<T, E: fmt::Display> Outcome<T> for Result<T, E> {
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}
