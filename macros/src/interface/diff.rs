//! The difference between neighbouring versions, which decides what an SO
//! may delegate and what the developer must write.

use super::model::{Method, Version};

/// How a method of one version relates to a neighbouring version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Relation {
    /// The neighbour has no method of this name.
    Absent,
    /// The neighbour has it with the same argument and return types.
    Same,
    /// The neighbour has it with other argument or return types.
    Changed,
}

/// How `method` relates to the method of the same name in `other`.
pub fn relation(method: &Method, other: Option<&Version>) -> Relation {
    match other.and_then(|v| v.methods.iter().find(|m| m.ident == method.ident)) {
        None => Relation::Absent,
        Some(m) if m.same_signature(method) => Relation::Same,
        Some(_) => Relation::Changed,
    }
}

/// Methods of `prev` that `next` no longer declares.
pub fn removed<'a>(prev: Option<&'a Version>, next: &Version) -> Vec<&'a Method> {
    prev.map_or_else(Vec::new, |p| {
        p.methods
            .iter()
            .filter(|m| !next.methods.iter().any(|n| n.ident == m.ident))
            .collect()
    })
}

/// A one-paragraph summary of what changed from `prev` to `next`, for rustdoc.
pub fn summary(prev: Option<&Version>, next: &Version) -> String {
    let Some(p) = prev else {
        return format!(
            "The first version declared: {} methods.",
            next.methods.len()
        );
    };
    let names = |ms: Vec<&Method>| {
        ms.iter()
            .map(|m| format!("`{}`", m.ident))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by = |r: Relation| {
        next.methods
            .iter()
            .filter(|m| relation(m, Some(p)) == r)
            .collect::<Vec<_>>()
    };
    let mut parts = Vec::new();
    for (label, list) in [
        ("added", by(Relation::Absent)),
        ("changed", by(Relation::Changed)),
        ("removed", removed(Some(p), next)),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label} {}", names(list)));
        }
    }
    if parts.is_empty() {
        return format!(
            "Changes since v{}: none in method signatures; both SOs delegate every method.",
            p.number
        );
    }
    // What the SOs must implement: a past SO every method of `prev` that
    // `next` removed or changed, a future SO every method `next` added or changed.
    let past: Vec<&Method> = p
        .methods
        .iter()
        .filter(|m| relation(m, Some(next)) != Relation::Same)
        .collect();
    let future: Vec<&Method> = next
        .methods
        .iter()
        .filter(|m| relation(m, Some(p)) != Relation::Same)
        .collect();
    let covers = |so: String, list: Vec<&Method>| {
        if list.is_empty() {
            format!("`{so}` delegates every method")
        } else {
            format!("`{so}` implements {}", names(list))
        }
    };
    format!(
        "Changes since v{}: {}. Covered by the SOs: {}; {}.",
        p.number,
        parts.join("; "),
        covers(format!("v{}::Past", p.number), past),
        covers(format!("v{}::Future", next.number), future)
    )
}
