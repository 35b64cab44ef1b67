//! Checks of one state version that need no transform plan: each type once,
//! the root continuing the previous root, no transform attributes in the
//! first version. Reads the model, reports into `Ctxt`.

use std::collections::BTreeSet;

use super::model::{Shape, StateField, StateType, StateVersion};
use crate::ctxt::Ctxt;

/// Checks version `v`, given the version before it.
pub fn version(cx: &Ctxt, v: &StateVersion, prev: Option<&StateVersion>) {
    let mut seen = BTreeSet::new();
    for t in &v.types {
        if !seen.insert(t.ident.to_string()) {
            cx.error_spanned_by(
                &t.ident,
                format!(
                    "`{}` is declared twice in v{}; each version declares each type once",
                    t.ident, v.number
                ),
            );
        }
    }
    let root = &v.types[0];
    match prev {
        None => {
            for t in &v.types {
                reject_transform_attrs(cx, v, t);
            }
        }
        Some(prev) => {
            let prev_root = &prev.types[0];
            // A `from` that names no type of the previous version gets its own error.
            let unknown_from =
                root.from.is_some() && !prev.types.iter().any(|t| t.ident == root.old_name());
            if prev_root.ident != root.old_name() && !unknown_from {
                cx.error_spanned_by(
                    &root.ident,
                    format!(
                        "the first type of a version is its root, and v{}'s root `{}` does not continue v{}'s root `{}`; \
                         declare `{}` first, or add #[upshift(from = \"{}\")] if the root was renamed",
                        v.number, root.ident, prev.number, prev_root.ident, prev_root.ident, prev_root.ident
                    ),
                );
            }
        }
    }
}

/// Errors for transform attributes in the first version.
fn reject_transform_attrs(cx: &Ctxt, v: &StateVersion, t: &StateType) {
    let first = |tokens: &dyn quote::ToTokens| {
        cx.error_spanned_by(
            tokens,
            format!(
                "v{} is the first version of this state: there is nothing to transform from; remove this attribute",
                v.number
            ),
        );
    };
    if let Some(from) = &t.from {
        first(from);
    }
    if let Some(transform) = &t.transform {
        first(transform);
    }
    let fields: Vec<&StateField> = match &t.shape {
        Shape::Struct(fields) => fields.iter().collect(),
        Shape::Enum(variants) => {
            for variant in variants {
                if let Some(from) = &variant.from {
                    first(from);
                }
            }
            variants.iter().flat_map(|v| &v.fields).collect()
        }
    };
    for f in fields {
        if let Some(from) = &f.from {
            first(from);
        }
        if let Some(with) = &f.with {
            first(with);
        }
        if f.default.is_some() {
            cx.syn_error(syn::Error::new(
                f.span,
                format!(
                    "v{} is the first version: `default` has no effect here; remove it",
                    v.number
                ),
            ));
        }
    }
}
