//! Checks across versions: numbering, the shared trait name, and names that
//! would clash with generated items.

use std::collections::BTreeSet;

use syn::{Ident, Item, UseTree};

use super::model::Service;
use crate::ctxt::Ctxt;

/// Items generated in every version module, which user names must not shadow.
pub const VERSION_ITEMS: &[&str] = &[
    "VERSION",
    "SCHEMA",
    "Interface",
    "Request",
    "Response",
    "Client",
    "Dispatcher",
    "PastSo",
    "Past",
    "FutureSo",
    "Future",
    "service",
    "service_with_future",
];

/// Items generated in the interface module itself.
const MODULE_ITEMS: &[&str] = &["SERVICE", "VERSIONS"];

/// Inherent methods of the generated client.
const CLIENT_METHODS: &[&str] = &["new", "with_deadline", "with_retry", "connection"];

/// Runs every cross-version check. Expansion only runs when none failed, so
/// SO chains are only generated over a sound version sequence.
pub fn service(cx: &Ctxt, svc: &Service) {
    versions(cx, svc);
    trait_names(cx, svc);
    module_items(cx, svc);
    method_names(cx, svc);
}

fn versions(cx: &Ctxt, svc: &Service) {
    let mut seen = BTreeSet::new();
    for pair in svc.versions.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        seen.insert(prev.number);
        if seen.contains(&next.number) {
            cx.syn_error(syn::Error::new(
                next.number_span,
                format!(
                    "v{} is declared twice; give this trait the next unused version, or remove it",
                    next.number
                ),
            ));
        } else if next.number < prev.number {
            cx.syn_error(syn::Error::new(
                next.number_span,
                format!(
                    "declare versions in increasing order: v{} is declared after v{}; move it above v{}",
                    next.number, prev.number, prev.number
                ),
            ));
        } else if next.number != prev.number + 1 {
            cx.syn_error(syn::Error::new(
                next.number_span,
                format!(
                    "versions must be consecutive so that every upgrade is one step: after v{} comes v{}, not v{}",
                    prev.number,
                    prev.number + 1,
                    next.number
                ),
            ));
        }
    }
}

fn trait_names(cx: &Ctxt, svc: &Service) {
    for v in &svc.versions {
        if v.ident != svc.trait_name {
            cx.error_spanned_by(
                &v.ident,
                format!(
                    "every version of an interface uses the same trait name; rename `{}` to `{}`",
                    v.ident, svc.trait_name
                ),
            );
        }
    }
    let name = svc.trait_name.to_string();
    if VERSION_ITEMS.contains(&name.as_str()) {
        cx.error_spanned_by(
            &svc.versions[0].ident,
            format!("`{name}` clashes with the generated `vN::{name}` of each version module; rename the trait"),
        );
    }
}

fn module_items(cx: &Ctxt, svc: &Service) {
    for item in &svc.items {
        for ident in item_names(item) {
            let name = ident.to_string();
            let is_version_module = name
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_version_module {
                cx.error_spanned_by(
                    ident,
                    format!(
                        "`{name}` clashes with the generated module of version {}; rename it",
                        &name[1..]
                    ),
                );
            } else if MODULE_ITEMS.contains(&name.as_str()) {
                cx.error_spanned_by(
                    ident,
                    format!("`{name}` clashes with the generated `{name}` constant; rename it"),
                );
            } else if VERSION_ITEMS.contains(&name.as_str()) || svc.trait_name == name {
                cx.error_spanned_by(
                    ident,
                    format!(
                        "`{name}` would be shadowed by the generated `vN::{name}` in each version module, \
                         so method signatures could not name it; rename it"
                    ),
                );
            }
        }
    }
}

fn method_names(cx: &Ctxt, svc: &Service) {
    for v in &svc.versions {
        for (i, m) in v.methods.iter().enumerate() {
            if let Some(other) = v.methods[..i].iter().find(|o| o.variant() == m.variant()) {
                cx.error_spanned_by(
                    &m.ident,
                    format!(
                        "methods `{}` and `{}` both become the message variant `{}`; rename one",
                        other.ident,
                        m.ident,
                        m.variant()
                    ),
                );
            }
            let name = m.ident.to_string();
            if CLIENT_METHODS.contains(&name.as_str()) {
                cx.error_spanned_by(
                    &m.ident,
                    format!(
                        "method `{name}` clashes with `Client::{name}` of the generated client; rename the method \
                         (the client's own methods are {})",
                        CLIENT_METHODS.join(", ")
                    ),
                );
            }
        }
    }
}

/// The names an item brings into the module's namespace.
fn item_names(item: &Item) -> Vec<&Ident> {
    match item {
        Item::Const(i) => vec![&i.ident],
        Item::Enum(i) => vec![&i.ident],
        Item::Fn(i) => vec![&i.sig.ident],
        Item::Mod(i) => vec![&i.ident],
        Item::Static(i) => vec![&i.ident],
        Item::Struct(i) => vec![&i.ident],
        Item::Type(i) => vec![&i.ident],
        Item::Union(i) => vec![&i.ident],
        Item::Macro(i) => i.ident.iter().collect(),
        Item::Use(i) => {
            let mut out = Vec::new();
            use_names(&i.tree, &mut out);
            out
        }
        _ => Vec::new(),
    }
}

fn use_names<'a>(tree: &'a UseTree, out: &mut Vec<&'a Ident>) {
    match tree {
        UseTree::Path(p) => use_names(&p.tree, out),
        UseTree::Name(n) if n.ident != "self" => out.push(&n.ident),
        UseTree::Name(_) | UseTree::Glob(_) => {}
        UseTree::Rename(r) => out.push(&r.rename),
        UseTree::Group(g) => g.items.iter().for_each(|t| use_names(t, out)),
    }
}
