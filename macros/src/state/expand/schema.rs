//! `vN::SCHEMA` of a state version, and the "changes since" rustdoc of its
//! module: both read the transform plan the generated `Upgrade` follows, so
//! the docs say which attribute covers each change.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Item;
use upshift_schema::{
    MemberChange as Member, MemberSchema, Origin, StateSchema, Text, TypeKind, TypeSchema,
};

use super::Gen;
use crate::attr;
use crate::canonical::type_text;
use crate::state::model::{Default_, Shape, StateVariant};
use crate::state::plan::{Arm, FieldPlan, Source, Step, TypePlan};

impl Gen<'_> {
    fn origin(plan: &TypePlan<'_>) -> Origin {
        match &plan.step {
            Step::New | Step::Invalid => Origin::New,
            Step::Transform { old, with } => Origin::Transform {
                from: old.ident.to_string().into(),
                with: type_text(with).into(),
            },
            Step::Fields { old, .. } | Step::Variants { old, .. } => Origin::Continues {
                from: old.ident.to_string().into(),
            },
        }
    }

    /// What a field plan says in the metadata.
    fn field_member(plan: &FieldPlan<'_>) -> Member {
        match &plan.source {
            Source::Move(o) => Member::Kept {
                from: o.key.clone().into(),
            },
            Source::Nested(o) => Member::Upgraded {
                from: o.key.clone().into(),
            },
            Source::Convert(o, with) => Member::Converted {
                from: o.key.clone().into(),
                from_ty: o.ty_text.clone().into(),
                with: type_text(with).into(),
            },
            Source::Default(Default_::Trait) => Member::Defaulted { with: None },
            Source::Default(Default_::Path(p)) => Member::Defaulted {
                with: Some(type_text(p).into()),
            },
            Source::Invalid => Member::New,
        }
    }

    /// What a new variant's arm says in the metadata: kept, upgraded through
    /// its fields, reshaped, or new (no old variant becomes it).
    fn variant_member(arms: &[Arm<'_>], v: &StateVariant) -> Member {
        let Some(arm) = arms.iter().find(|a| std::ptr::eq(a.new, v)) else {
            return Member::New;
        };
        let plans: Vec<Member> = arm.fields.iter().map(Self::field_member).collect();
        let same_fields = arm.old.fields.len() == v.fields.len();
        let from: Text = arm.old.ident.to_string().into();
        if same_fields && plans.iter().all(|m| matches!(m, Member::Kept { .. })) {
            Member::Kept { from }
        } else if same_fields
            && plans
                .iter()
                .all(|m| matches!(m, Member::Kept { .. } | Member::Upgraded { .. }))
        {
            Member::Upgraded { from }
        } else {
            Member::Reshaped { from }
        }
    }

    /// Each member of `t` with its text and how it came from the previous
    /// version; then the old members nothing takes a value from.
    fn members(plan: &TypePlan<'_>) -> (Vec<(String, String, Member)>, Vec<String>) {
        let (t, step) = (plan.ty, &plan.step);
        match (&t.shape, step) {
            (Shape::Struct(fields), _) => {
                let members: Vec<(String, String, Member)> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let change = match step {
                            Step::Fields { fields: plans, .. } => Self::field_member(&plans[i]),
                            Step::Transform { .. } => Member::ByTransform,
                            _ => Member::New,
                        };
                        (f.key.clone(), f.ty_text.clone(), change)
                    })
                    .collect();
                let removed = match step {
                    Step::Fields { old, .. } => {
                        let Shape::Struct(old_fields) = &old.shape else {
                            return (members, Vec::new());
                        };
                        let taken: Vec<&str> = members
                            .iter()
                            .filter_map(|(_, _, m)| match m {
                                Member::Kept { from }
                                | Member::Upgraded { from }
                                | Member::Converted { from, .. } => Some(&**from),
                                _ => None,
                            })
                            .collect();
                        old_fields
                            .iter()
                            .filter(|o| !taken.contains(&o.key.as_str()))
                            .map(|o| o.key.clone())
                            .collect()
                    }
                    _ => Vec::new(),
                };
                (members, removed)
            }
            (Shape::Enum(variants), _) => {
                let Item::Enum(item) = &t.item else {
                    return (Vec::new(), Vec::new());
                };
                let members = variants
                    .iter()
                    .zip(&item.variants)
                    .map(|(v, syn_v)| {
                        let change = match step {
                            Step::Variants { arms, .. } => Self::variant_member(arms, v),
                            Step::Transform { .. } => Member::ByTransform,
                            _ => Member::New,
                        };
                        (
                            v.ident.to_string(),
                            crate::canonical::fields_text(&syn_v.fields),
                            change,
                        )
                    })
                    .collect();
                (members, Vec::new())
            }
        }
    }

    /// This version's metadata, computed once: the static and the JSON
    /// report are both written from it.
    pub fn value(&self) -> StateSchema {
        let types: Vec<TypeSchema> = self
            .plan
            .types
            .iter()
            .map(|plan| {
                let t = plan.ty;
                let (members, removed) = Self::members(plan);
                TypeSchema {
                    name: t.ident.to_string().into(),
                    kind: match t.shape {
                        Shape::Struct(_) => TypeKind::Struct,
                        Shape::Enum(_) => TypeKind::Enum,
                    },
                    shape: crate::canonical::shape_line(&t.item).into(),
                    origin: Self::origin(plan),
                    members: members
                        .into_iter()
                        .map(|(name, ty, change)| MemberSchema {
                            name: name.into(),
                            ty: ty.into(),
                            change,
                        })
                        .collect::<Vec<_>>()
                        .into(),
                    removed: removed
                        .into_iter()
                        .map(Text::from)
                        .collect::<Vec<_>>()
                        .into(),
                }
            })
            .collect();
        StateSchema {
            state: self.state.name.clone().into(),
            version: self.v.number,
            doc: attr::doc_text(item_attrs(&self.v.types[0].item)).into(),
            types: types.into(),
            removed: self
                .removed_types()
                .into_iter()
                .map(Text::from)
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// `pub static SCHEMA: upshift::schema::StateSchema`.
    pub(super) fn schema(&self) -> TokenStream {
        let value = crate::metadata::state_tokens(&self.value());
        quote! {
            /// This version's types and how each came from the previous version.
            pub static SCHEMA: ::upshift::schema::StateSchema = #value;
        }
    }

    /// Types of the previous version that no type of this one continues.
    fn removed_types(&self) -> Vec<String> {
        self.prev.map_or_else(Vec::new, |prev| {
            prev.types
                .iter()
                .filter(|p| !self.v.types.iter().any(|t| p.ident == t.old_name()))
                .map(|p| p.ident.to_string())
                .collect()
        })
    }

    /// The rustdoc paragraph of a version module: what changed since the
    /// previous version, and which attribute covers each change.
    pub(super) fn changes_doc(&self) -> String {
        let Some(prev) = self.prev else {
            let names: Vec<String> = self
                .v
                .types
                .iter()
                .map(|t| format!("`{}`", t.ident))
                .collect();
            return format!("The first version: {}.", names.join(", "));
        };
        let mut lines = Vec::new();
        for plan in &self.plan.types {
            let t = plan.ty;
            let (members, removed) = Self::members(plan);
            let mut parts: Vec<String> = Vec::new();
            let head = match Self::origin(plan) {
                Origin::New => {
                    lines.push(format!("- `{}`: new type.", t.ident));
                    continue;
                }
                Origin::Transform { from, with } => {
                    lines.push(format!(
                        "- `{}`: converted from v{}'s `{from}` by `transform = {with}`.",
                        t.ident, prev.number
                    ));
                    continue;
                }
                Origin::Continues { from } if t.ident != *from => {
                    format!("`{}` (renamed from `{from}`)", t.ident)
                }
                Origin::Continues { .. } => format!("`{}`", t.ident),
            };
            for (name, ty, change) in &members {
                match change {
                    Member::Kept { from } if from != name => {
                        parts.push(format!("`{name}` renamed from `{from}` (`from`)"));
                    }
                    Member::Kept { .. } | Member::ByTransform => {}
                    Member::Upgraded { from } if from != name => parts.push(format!(
                        "`{name}` renamed from `{from}` (`from`) and upgraded through the types it holds"
                    )),
                    Member::Upgraded { .. } => {
                        parts.push(format!("`{name}` upgraded through the types it holds"));
                    }
                    Member::New => parts.push(format!("`{name}` added")),
                    Member::Converted {
                        from,
                        from_ty,
                        with,
                    } => parts.push(format!(
                        "`{name}` retyped from `{from}: {from_ty}` to `{ty}` (`with = {with}`)"
                    )),
                    Member::Defaulted { with: None } => {
                        parts.push(format!("`{name}: {ty}` added (`default`)"));
                    }
                    Member::Defaulted { with: Some(path) } => {
                        parts.push(format!("`{name}: {ty}` added (`default = {path}`)"));
                    }
                    Member::Reshaped { from } => {
                        parts.push(format!("variant `{name}` (from `{from}`) changed its fields"));
                    }
                }
            }
            parts.extend(removed.iter().map(|r| format!("`{r}` removed")));
            if !parts.is_empty() {
                lines.push(format!("- {head}: {}.", parts.join("; ")));
            }
        }
        for r in self.removed_types() {
            lines.push(format!("- `{r}`: removed."));
        }
        if lines.is_empty() {
            format!("Changes since v{}: none.", prev.number)
        } else {
            format!("Changes since v{}:\n\n{}", prev.number, lines.join("\n"))
        }
    }
}

fn item_attrs(item: &Item) -> &[syn::Attribute] {
    match item {
        Item::Struct(s) => &s.attrs,
        Item::Enum(e) => &e.attrs,
        _ => &[],
    }
}
