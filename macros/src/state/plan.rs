//! The transform plan of a state version, computed once: for every type
//! where its values come from, and for every field and variant how its value
//! is made from the previous version's. Every "cannot derive this" error is
//! reported here, on the smallest token, with the attribute that would fix
//! it; expansion and metadata read the plan and report nothing.

use std::collections::BTreeSet;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::quote;

use super::model::{Default_, Shape, StateField, StateType, StateVariant, StateVersion};
use crate::ctxt::Ctxt;

/// How each type of one version comes from the previous version, in the
/// version's declaration order.
pub struct VersionPlan<'a> {
    pub types: Vec<TypePlan<'a>>,
}

/// One type's plan.
pub struct TypePlan<'a> {
    pub ty: &'a StateType,
    pub step: Step<'a>,
}

/// Where a type's values come from.
pub enum Step<'a> {
    /// No type of the previous version: new, or the first version.
    New,
    /// Converted as a whole by `transform = path`.
    Transform {
        old: &'a StateType,
        with: &'a syn::Path,
    },
    /// A struct from a struct, one source per new field.
    Fields {
        old: &'a StateType,
        fields: Vec<FieldPlan<'a>>,
    },
    /// An enum from an enum, one arm per old variant.
    Variants {
        old: &'a StateType,
        arms: Vec<Arm<'a>>,
    },
    /// A struct became an enum or the reverse without `transform` (reported).
    Invalid,
}

/// An old variant, the new variant it becomes, and each new field's source.
pub struct Arm<'a> {
    pub old: &'a StateVariant,
    pub new: &'a StateVariant,
    pub fields: Vec<FieldPlan<'a>>,
}

/// A new field and where its value comes from.
pub struct FieldPlan<'a> {
    pub field: &'a StateField,
    pub source: Source<'a>,
}

/// Where a new field's value comes from in a transform.
pub enum Source<'a> {
    /// Moved from the old field (same type as written).
    Move(&'a StateField),
    /// Same type as written, holding state types that changed: upgraded.
    Nested(&'a StateField),
    /// Converted from the old field by `with = path`.
    Convert(&'a StateField, &'a syn::Path),
    /// A new field starting from `default` or `default = path`.
    Default(&'a Default_),
    /// No value can be derived (reported).
    Invalid,
}

impl<'a> VersionPlan<'a> {
    /// The plan of version `v` after `prev`; reports what cannot be derived.
    pub fn new(cx: &Ctxt, v: &'a StateVersion, prev: Option<&'a StateVersion>) -> Self {
        let planner = Planner {
            cx,
            v,
            prev,
            names: v.types.iter().map(|t| t.ident.to_string()).collect(),
        };
        VersionPlan {
            types: v
                .types
                .iter()
                .map(|ty| TypePlan {
                    ty,
                    step: planner.step(ty),
                })
                .collect(),
        }
    }
}

struct Planner<'a, 'c> {
    cx: &'c Ctxt,
    v: &'a StateVersion,
    prev: Option<&'a StateVersion>,
    /// Names of this version's types: fields that mention one transform through it.
    names: BTreeSet<String>,
}

impl<'a> Planner<'a, '_> {
    fn step(&self, t: &'a StateType) -> Step<'a> {
        let Some(old) = self.predecessor(t) else {
            return Step::New;
        };
        let prev = self.prev.map_or(0, |p| p.number);
        if let Some(with) = &t.transform {
            return Step::Transform { old, with };
        }
        match (&old.shape, &t.shape) {
            (Shape::Struct(old_fields), Shape::Struct(new_fields)) => Step::Fields {
                old,
                fields: self.fields(&t.ident, old_fields, new_fields),
            },
            (Shape::Enum(old_variants), Shape::Enum(new_variants)) => {
                let arms = old_variants
                    .iter()
                    .filter_map(|ov| {
                        let nv = new_variants.iter().find(|nv| {
                            nv.from
                                .as_ref()
                                .map_or_else(|| nv.ident == ov.ident, |f| ov.ident == f.value())
                        });
                        let Some(nv) = nv else {
                            self.cx.error_spanned_by(
                                &t.ident,
                                format!(
                                    "variant `{}` of v{prev} has no counterpart in v{}: add #[upshift(from = \"{}\")] to the variant it became, \
                                     or convert the whole enum with #[upshift(transform = path)]",
                                    ov.ident, self.v.number, ov.ident
                                ),
                            );
                            return None;
                        };
                        Some(Arm {
                            old: ov,
                            new: nv,
                            fields: self.fields(&nv.ident, &ov.fields, &nv.fields),
                        })
                    })
                    .collect();
                Step::Variants { old, arms }
            }
            _ => {
                self.cx.error_spanned_by(
                    &t.ident,
                    format!(
                        "`{}` changed between a struct and an enum from v{prev} to v{}; convert it with #[upshift(transform = path)]",
                        t.ident, self.v.number
                    ),
                );
                Step::Invalid
            }
        }
    }

    /// The previous version's type that `t` continues, if any.
    fn predecessor(&self, t: &StateType) -> Option<&'a StateType> {
        let prev = self.prev?;
        let old = t.old_name();
        let found = prev.types.iter().find(|p| p.ident == old);
        if found.is_none() {
            if let Some(from) = &t.from {
                let names: Vec<String> = prev
                    .types
                    .iter()
                    .map(|p| format!("`{}`", p.ident))
                    .collect();
                self.cx.error_spanned_by(
                    from,
                    format!(
                        "v{} has no type `{old}` to continue; its types are {}",
                        prev.number,
                        names.join(", ")
                    ),
                );
            } else if let Some(transform) = &t.transform {
                self.cx.error_spanned_by(
                    transform,
                    format!(
                        "`{}` is new in v{}: there is nothing to transform from; remove `transform`, or add `from = \"OldName\"`",
                        t.ident, self.v.number
                    ),
                );
            }
        }
        found
    }

    /// Where each new field's value comes from, with an error on each field
    /// whose value cannot be derived.
    fn fields(
        &self,
        owner: &Ident,
        old: &'a [StateField],
        new: &'a [StateField],
    ) -> Vec<FieldPlan<'a>> {
        let prev = self.prev.map_or(0, |p| p.number);
        new.iter()
            .map(|f| {
                let source_key = f.from.as_ref().map_or_else(|| f.key.clone(), |l| l.value());
                let found = old.iter().find(|o| o.key == source_key);
                let source = match (found, &f.default, &f.with) {
                    (Some(_), Some(_), _) => {
                        self.cx.syn_error(syn::Error::new(
                            f.span,
                            format!(
                                "`{source_key}` of `{owner}` exists in v{prev}, so `default` would drop its value; remove `default`, \
                                 or convert the old value with `with = path`",
                            ),
                        ));
                        Source::Invalid
                    }
                    (None, Some(default), _) => Source::Default(default),
                    (Some(o), None, Some(with)) => Source::Convert(o, with),
                    (Some(o), None, None) if o.ty_text == self.old_spelling(&f.ty) => {
                        if self.mentions_state_type(&f.ty) {
                            Source::Nested(o)
                        } else {
                            Source::Move(o)
                        }
                    }
                    (Some(o), None, None) => {
                        self.cx.syn_error(syn::Error::new(
                            f.span,
                            format!(
                                "`{}` of `{owner}` changed type from `{}` in v{prev} to `{}` in v{}; add \
                                 #[upshift(with = path)] naming a function from the old value (fn({}) -> {}, or -> Result<{}, E>)",
                                f.key, o.ty_text, f.ty_text, self.v.number, o.ty_text, f.ty_text, f.ty_text
                            ),
                        ));
                        Source::Invalid
                    }
                    (None, None, _) => {
                        let names: Vec<String> = old.iter().map(|o| format!("`{}`", o.key)).collect();
                        let old_fields = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                        let message = match (&f.from, &f.with) {
                            (Some(_), _) => format!(
                                "`{owner}` has no field `{source_key}` in v{prev} to take `{}` from; its fields there are {old_fields}",
                                f.key
                            ),
                            (None, Some(_)) => format!(
                                "`{}` of `{owner}` has no field of that name in v{prev} to convert; name the old field with \
                                 #[upshift(from = \"old_name\")] (fields in v{prev}: {old_fields})",
                                f.key
                            ),
                            (None, None) => format!(
                                "`{}` of `{owner}` is new in v{}, so it has no value to start from; add #[upshift(default)], \
                                 #[upshift(default = path)], or #[upshift(from = \"old_name\")] if it was renamed \
                                 (fields in v{prev}: {old_fields})",
                                f.key, self.v.number
                            ),
                        };
                        self.cx.syn_error(syn::Error::new(f.span, message));
                        Source::Invalid
                    }
                };
                FieldPlan { field: f, source }
            })
            .collect()
    }

    /// A type as the previous version spells it: this version's types that
    /// were renamed with `from` take their old names, so `Vec<Book>` matches
    /// v1's `Vec<Account>` when `Book` continues `Account`.
    fn old_spelling(&self, ty: &syn::Type) -> String {
        fn rename(tokens: TokenStream, types: &[StateType]) -> TokenStream {
            tokens
                .into_iter()
                .map(|t| match t {
                    TokenTree::Ident(i) => match types.iter().find(|t| t.ident == i) {
                        Some(t) => TokenTree::Ident(Ident::new(&t.old_name(), i.span())),
                        None => TokenTree::Ident(i),
                    },
                    TokenTree::Group(g) => {
                        let mut group =
                            proc_macro2::Group::new(g.delimiter(), rename(g.stream(), types));
                        group.set_span(g.span());
                        TokenTree::Group(group)
                    }
                    other => other,
                })
                .collect()
        }
        crate::canonical::type_text(&rename(quote!(#ty), &self.v.types))
    }

    /// Whether a type names one of this version's types, so an unchanged
    /// field still needs that type's transform.
    fn mentions_state_type(&self, ty: &syn::Type) -> bool {
        fn walk(tokens: TokenStream, names: &BTreeSet<String>) -> bool {
            tokens.into_iter().any(|t| match t {
                TokenTree::Ident(i) => names.contains(&i.to_string()),
                TokenTree::Group(g) => walk(g.stream(), names),
                _ => false,
            })
        }
        walk(quote!(#ty), &self.names)
    }
}

impl VersionPlan<'_> {
    /// Reports what a rollback of this version could not derive: a
    /// `transform` or `with` without its `inverse` when the state declares
    /// `rollback`, and an `inverse` with nothing to undo, or declared
    /// without `rollback`.
    pub fn check_rollback(&self, cx: &Ctxt, rollback: bool, number: u32) {
        let prev = number.saturating_sub(1);
        let without_rollback = |path: &syn::Path| {
            cx.error_spanned_by(
                path,
                "`inverse` is what a rollback runs; declare the state with #[upshift::state(rollback)], or remove it",
            );
        };
        for plan in &self.types {
            let t = plan.ty;
            match (&plan.step, &t.inverse) {
                (Step::Transform { with, old }, None) if rollback => cx.error_spanned_by(
                    with,
                    format!(
                        "a rollback of v{number} turns `{}` back into v{prev}'s and needs the inverse of this function: \
                         add #[upshift(inverse = path)] naming a fn(v{number}::{}) -> v{prev}::{} (or -> Result<v{prev}::{}, E>)",
                        t.ident, t.ident, old.ident, old.ident
                    ),
                ),
                (Step::Transform { .. }, Some(inverse)) if !rollback => without_rollback(inverse),
                (Step::Transform { .. }, _) => {}
                (_, Some(inverse)) => cx.error_spanned_by(
                    inverse,
                    format!("`inverse` undoes `transform`, and `{}` has none; remove it", t.ident),
                ),
                _ => {}
            }
            let fields: Vec<&FieldPlan> = match &plan.step {
                Step::Fields { fields, .. } => fields.iter().collect(),
                Step::Variants { arms, .. } => arms.iter().flat_map(|a| &a.fields).collect(),
                Step::New | Step::Invalid => {
                    let fields: Vec<&StateField> = match &t.shape {
                        Shape::Struct(fields) => fields.iter().collect(),
                        Shape::Enum(variants) => variants.iter().flat_map(|v| &v.fields).collect(),
                    };
                    for inverse in fields.iter().filter_map(|f| f.inverse.as_ref()) {
                        cx.error_spanned_by(
                            inverse,
                            format!("`inverse` undoes `with`, and `{}` is new in v{number}: there is nothing to undo; remove it", t.ident),
                        );
                    }
                    Vec::new()
                }
                Step::Transform { .. } => Vec::new(),
            };
            for f in fields {
                match (&f.source, &f.field.inverse) {
                    (Source::Convert(o, with), None) if rollback => cx.error_spanned_by(
                        with,
                        format!(
                            "a rollback of v{number} turns `{}` of `{}` back into v{prev}'s `{}` and needs the inverse of this function: \
                             add `inverse = path` naming a fn({}) -> {} (or -> Result<{}, E>)",
                            f.field.key, t.ident, o.key, f.field.ty_text, o.ty_text, o.ty_text
                        ),
                    ),
                    (Source::Convert(..), Some(inverse)) if !rollback => without_rollback(inverse),
                    (Source::Convert(..), _) => {}
                    (_, Some(inverse)) => cx.error_spanned_by(
                        inverse,
                        format!(
                            "`inverse` undoes `with`, and `{}` of `{}` has none; remove it",
                            f.field.key, t.ident
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}
