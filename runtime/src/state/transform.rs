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

/// Converts a value of the next version's type back into this version's:
/// the downgrade transform a rollback runs.
///
/// `#[upshift::state(rollback)]` implements it for every type with a
/// predecessor: fields added with `default` are dropped (values that differ
/// from the default are counted in [`Dropped`]), renames are reversed, types
/// that hold changed types are converted through theirs, and `with` or
/// `transform` functions run their declared `inverse`. A variant new in the
/// next version has nothing to become and fails the downgrade. upshift
/// implements it for the same containers as [`Upgrade`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rolled back from `{New}`",
    label = "no downgrade from `{New}`",
    note = "declare the state with #[upshift::state(rollback)], so each version gets its downgrade to the one before"
)]
pub trait Downgrade<New>: Sized {
    /// Transforms `new` back; what this version cannot hold is counted in
    /// `dropped`; fails with the step, type and field that failed.
    fn downgrade(new: New, dropped: &mut Dropped) -> Result<Self, TransformError>;
}

impl<T: Downgrade<U>, U> Downgrade<Vec<U>> for Vec<T> {
    fn downgrade(new: Vec<U>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        new.into_iter().map(|v| T::downgrade(v, dropped)).collect()
    }
}

impl<T: Downgrade<U>, U> Downgrade<VecDeque<U>> for VecDeque<T> {
    fn downgrade(new: VecDeque<U>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        new.into_iter().map(|v| T::downgrade(v, dropped)).collect()
    }
}

impl<T: Downgrade<U>, U> Downgrade<Option<U>> for Option<T> {
    fn downgrade(new: Option<U>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        new.map(|v| T::downgrade(v, dropped)).transpose()
    }
}

impl<T: Downgrade<U>, U> Downgrade<Box<U>> for Box<T> {
    fn downgrade(new: Box<U>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        T::downgrade(*new, dropped).map(Box::new)
    }
}

impl<K: Ord, V: Downgrade<U>, U> Downgrade<BTreeMap<K, U>> for BTreeMap<K, V> {
    fn downgrade(new: BTreeMap<K, U>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        new.into_iter()
            .map(|(k, v)| Ok((k, V::downgrade(v, dropped)?)))
            .collect()
    }
}

impl<K: Eq + Hash, V: Downgrade<U>, U, S: BuildHasher + Default> Downgrade<HashMap<K, U, S>>
    for HashMap<K, V, S>
{
    fn downgrade(new: HashMap<K, U, S>, dropped: &mut Dropped) -> Result<Self, TransformError> {
        new.into_iter()
            .map(|(k, v)| Ok((k, V::downgrade(v, dropped)?)))
            .collect()
    }
}

/// What a rollback could not carry back: per field the next version added,
/// how many values that differ from the field's default were dropped (every
/// value, for a field whose type cannot be compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    counts: BTreeMap<&'static str, u64>,
}

impl Dropped {
    /// Counts one dropped value of `place` (`Type.field`).
    pub fn record(&mut self, place: &'static str) {
        *self.counts.entry(place).or_default() += 1;
    }

    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// How many values were dropped in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Each place (`Type.field`) with the values dropped there.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }
}

impl fmt::Display for Dropped {
    /// `nothing dropped`, or `3 values dropped: Entry.expires (2), Root.hits (1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing dropped");
        }
        let total = self.total();
        write!(
            f,
            "{total} value{} dropped: ",
            if total == 1 { "" } else { "s" }
        )?;
        for (i, (place, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{place} ({n})")?;
        }
        Ok(())
    }
}

/// A value a downgrade drops, probed for whether it holds more than its
/// default: `(&&Probe(&value)).differs(|| default)` compares when the type
/// can be compared, and says `true` otherwise (generated code only).
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct Probe<'a, T>(pub &'a T);

#[doc(hidden)]
pub trait ProbeEq<T> {
    fn differs(&self, default: impl FnOnce() -> T) -> bool;
}

impl<T: PartialEq> ProbeEq<T> for &Probe<'_, T> {
    fn differs(&self, default: impl FnOnce() -> T) -> bool {
        *self.0 != default()
    }
}

#[doc(hidden)]
pub trait ProbeAny<T> {
    fn differs(&self, default: impl FnOnce() -> T) -> bool;
}

impl<T> ProbeAny<T> for Probe<'_, T> {
    fn differs(&self, _: impl FnOnce() -> T) -> bool {
        true
    }
}

/// The value a field an upgrade removed takes when a rollback brings it
/// back: its type's default (generated code only).
#[doc(hidden)]
pub fn restored<T: Restored>() -> T {
    T::restored()
}

#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a field the next version removed comes back on rollback with its type's `Default`, and `{Self}` has none",
    label = "removed by the next version",
    note = "implement `Default` for `{Self}`, or leave `rollback` out of #[upshift::state]"
)]
pub trait Restored {
    fn restored() -> Self;
}

impl<T: Default> Restored for T {
    fn restored() -> Self {
        T::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Cmp(u32);
    struct NoCmp;

    // The double borrow is what picks the comparing impl when there is one.
    #[allow(clippy::needless_borrow)]
    #[test]
    fn a_probe_compares_when_it_can_and_counts_otherwise() {
        use super::{ProbeAny as _, ProbeEq as _};
        assert!(!(&&Probe(&Cmp(0))).differs(|| Cmp(0)));
        assert!((&&Probe(&Cmp(1))).differs(|| Cmp(0)));
        assert!((&&Probe(&NoCmp)).differs(|| NoCmp));
    }

    #[test]
    fn dropped_values_are_told_per_place() {
        let mut d = Dropped::default();
        assert_eq!(d.to_string(), "nothing dropped");
        d.record("Entry.expires");
        d.record("Entry.expires");
        d.record("Root.hits");
        assert_eq!(d.total(), 3);
        assert_eq!(
            d.to_string(),
            "3 values dropped: Entry.expires (2), Root.hits (1)"
        );
    }
}
