//! `vN::SCHEMA` of a state version, and the "changes since" rustdoc of its
//! module: both read the transform plan the generated `Upgrade` follows, so
//! the docs say which attribute covers each change.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Item;

use super::{Gen, Plan};
use crate::attr;
use crate::model::type_text;
use crate::state_model::{Default_, Shape, StateField, StateType, StateVariant};

/// How one member (field or variant) of a type came from the previous version.
enum Member {
    New,
    Kept(String),
    Upgraded(String),
    Converted {
        from: String,
        from_ty: String,
        with: String,
    },
    Defaulted(Option<String>),
    Reshaped(String),
    ByTransform,
}

/// Where a type's values come from.
enum Origin {
    New,
    Continues(String),
    Transform { from: String, with: String },
}

impl Gen<'_> {
    fn old_type(&self, t: &StateType) -> Option<&StateType> {
        let old = t.old_name();
        self.prev?.types.iter().find(|p| p.ident == old)
    }

    fn origin(&self, t: &StateType) -> Origin {
        match (self.old_type(t), &t.transform) {
            (None, _) => Origin::New,
            (Some(old), Some(with)) => Origin::Transform {
                from: old.ident.to_string(),
                with: type_text(with),
            },
            (Some(old), None) => Origin::Continues(old.ident.to_string()),
        }
    }

    fn field_member(&self, old: &[StateField], f: &StateField) -> Member {
        match self.plan(old, f) {
            Plan::Move(o) => Member::Kept(o.key.clone()),
            Plan::Nested(o) => Member::Upgraded(o.key.clone()),
            Plan::Convert(o, with) => Member::Converted {
                from: o.key.clone(),
                from_ty: o.ty_text.clone(),
                with: type_text(with),
            },
            Plan::Default(Default_::Trait) => Member::Defaulted(None),
            Plan::Default(Default_::Path(p)) => Member::Defaulted(Some(type_text(p))),
            Plan::DefaultDrops | Plan::Retyped(_) | Plan::Missing => Member::New,
        }
    }

    fn variant_member(&self, old: &[StateVariant], v: &StateVariant) -> Member {
        let source = v
            .from
            .as_ref()
            .map_or_else(|| v.ident.to_string(), |f| f.value());
        let Some(ov) = old.iter().find(|o| o.ident == source) else {
            return Member::New;
        };
        let plans: Vec<Member> = v
            .fields
            .iter()
            .map(|f| self.field_member(&ov.fields, f))
            .collect();
        let same_fields = ov.fields.len() == v.fields.len();
        if same_fields && plans.iter().all(|m| matches!(m, Member::Kept(_))) {
            Member::Kept(source)
        } else if same_fields
            && plans
                .iter()
                .all(|m| matches!(m, Member::Kept(_) | Member::Upgraded(_)))
        {
            Member::Upgraded(source)
        } else {
            Member::Reshaped(source)
        }
    }

    /// Each member of `t` with its text and how it came from the previous
    /// version; then the old members nothing takes a value from.
    fn members(&self, t: &StateType) -> (Vec<(String, String, Member)>, Vec<String>) {
        let origin = self.origin(t);
        let old = self.old_type(t);
        let mut removed = Vec::new();
        let members = match &t.shape {
            Shape::Struct(fields) => {
                let members: Vec<_> = fields
                    .iter()
                    .map(|f| {
                        let change = match (&origin, old.map(|o| &o.shape)) {
                            (Origin::Continues(_), Some(Shape::Struct(old_fields))) => {
                                self.field_member(old_fields, f)
                            }
                            (Origin::Transform { .. }, _) => Member::ByTransform,
                            _ => Member::New,
                        };
                        (f.key.clone(), f.ty_text.clone(), change)
                    })
                    .collect();
                if let (Origin::Continues(_), Some(Shape::Struct(old_fields))) =
                    (&origin, old.map(|o| &o.shape))
                {
                    let taken: Vec<&str> = members
                        .iter()
                        .filter_map(|(_, _, m)| match m {
                            Member::Kept(f) | Member::Upgraded(f) => Some(f.as_str()),
                            Member::Converted { from, .. } => Some(from.as_str()),
                            _ => None,
                        })
                        .collect();
                    removed = old_fields
                        .iter()
                        .filter(|o| !taken.contains(&o.key.as_str()))
                        .map(|o| o.key.clone())
                        .collect();
                }
                members
            }
            Shape::Enum(variants) => {
                let Item::Enum(item) = &t.item else {
                    return (Vec::new(), Vec::new());
                };
                variants
                    .iter()
                    .zip(&item.variants)
                    .map(|(v, syn_v)| {
                        let change = match (&origin, old.map(|o| &o.shape)) {
                            (Origin::Continues(_), Some(Shape::Enum(old_variants))) => {
                                self.variant_member(old_variants, v)
                            }
                            (Origin::Transform { .. }, _) => Member::ByTransform,
                            _ => Member::New,
                        };
                        (
                            v.ident.to_string(),
                            crate::model::fields_text(&syn_v.fields),
                            change,
                        )
                    })
                    .collect()
            }
        };
        (members, removed)
    }

    /// `pub static SCHEMA: upshift::schema::StateSchema`.
    pub(super) fn schema(&self) -> TokenStream {
        let number = self.v.number;
        let doc = attr::doc_text(item_attrs(&self.v.types[0].item));
        let types = self.v.types.iter().map(|t| {
            let name = t.ident.to_string();
            let shape = super::shape_line(&t.item);
            let kind = match t.shape {
                Shape::Struct(_) => quote!(Struct),
                Shape::Enum(_) => quote!(Enum),
            };
            let origin = match self.origin(t) {
                Origin::New => quote!(::upshift::schema::Origin::New),
                Origin::Continues(from) => {
                    quote!(::upshift::schema::Origin::Continues { from: #from })
                }
                Origin::Transform { from, with } => {
                    quote!(::upshift::schema::Origin::Transform { from: #from, with: #with })
                }
            };
            let (members, removed) = self.members(t);
            let members = members.iter().map(|(name, ty, change)| {
                let change = member_tokens(change);
                quote!(::upshift::schema::MemberSchema { name: #name, ty: #ty, change: #change })
            });
            quote! {
                ::upshift::schema::TypeSchema {
                    name: #name,
                    kind: ::upshift::schema::TypeKind::#kind,
                    shape: #shape,
                    origin: #origin,
                    members: &[#(#members),*],
                    removed: &[#(#removed),*],
                }
            }
        });
        let removed = self.removed_types();
        quote! {
            /// This version's types and how each came from the previous version.
            pub static SCHEMA: ::upshift::schema::StateSchema = ::upshift::schema::StateSchema {
                state: super::NAME,
                version: #number,
                doc: #doc,
                types: &[#(#types),*],
                removed: &[#(#removed),*],
            };
        }
    }

    /// This version as `upshift::docs::state_json` writes it.
    pub(super) fn json(&self) -> String {
        use crate::json::{string, strings, tagged};
        let types: Vec<String> = self
            .v
            .types
            .iter()
            .map(|t| {
                let kind = match t.shape {
                    Shape::Struct(_) => "struct",
                    Shape::Enum(_) => "enum",
                };
                let origin = match self.origin(t) {
                    Origin::New => tagged("new", &[]),
                    Origin::Continues(from) => tagged("continues", &[("from", &from)]),
                    Origin::Transform { from, with } => {
                        tagged("transform", &[("from", &from), ("with", &with)])
                    }
                };
                let (members, removed) = self.members(t);
                let members: Vec<String> = members
                    .iter()
                    .map(|(name, ty, change)| {
                        let change = match change {
                            Member::New => tagged("new", &[]),
                            Member::Kept(from) => tagged("kept", &[("from", from)]),
                            Member::Upgraded(from) => tagged("upgraded", &[("from", from)]),
                            Member::Converted {
                                from,
                                from_ty,
                                with,
                            } => tagged(
                                "converted",
                                &[("from", from), ("from_type", from_ty), ("with", with)],
                            ),
                            Member::Defaulted(None) => tagged("defaulted", &[]),
                            Member::Defaulted(Some(path)) => {
                                tagged("defaulted", &[("with", path)])
                            }
                            Member::Reshaped(from) => tagged("reshaped", &[("from", from)]),
                            Member::ByTransform => tagged("by_transform", &[]),
                        };
                        format!(
                            "{{\"name\":{},\"type\":{},\"change\":{change}}}",
                            string(name),
                            string(ty)
                        )
                    })
                    .collect();
                format!(
                    "{{\"name\":{},\"kind\":{},\"shape\":{},\"origin\":{origin},\"members\":[{}],\"removed\":{}}}",
                    string(&t.ident.to_string()),
                    string(kind),
                    string(&super::shape_line(&t.item)),
                    members.join(","),
                    strings(&removed)
                )
            })
            .collect();
        format!(
            "{{\"state\":{},\"version\":{},\"doc\":{},\"types\":[{}],\"removed\":{}}}",
            string(&self.state.name),
            self.v.number,
            string(&attr::doc_text(item_attrs(&self.v.types[0].item))),
            types.join(","),
            strings(&self.removed_types())
        )
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
        for t in &self.v.types {
            let (members, removed) = self.members(t);
            let mut parts: Vec<String> = Vec::new();
            let head = match self.origin(t) {
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
                Origin::Continues(from) if t.ident != from => {
                    format!("`{}` (renamed from `{from}`)", t.ident)
                }
                Origin::Continues(_) => format!("`{}`", t.ident),
            };
            for (name, ty, change) in &members {
                match change {
                    Member::Kept(from) if from != name => {
                        parts.push(format!("`{name}` renamed from `{from}` (`from`)"));
                    }
                    Member::Kept(_) | Member::ByTransform => {}
                    Member::Upgraded(from) if from != name => parts.push(format!(
                        "`{name}` renamed from `{from}` (`from`) and upgraded through the types it holds"
                    )),
                    Member::Upgraded(_) => {
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
                    Member::Defaulted(None) => {
                        parts.push(format!("`{name}: {ty}` added (`default`)"));
                    }
                    Member::Defaulted(Some(path)) => {
                        parts.push(format!("`{name}: {ty}` added (`default = {path}`)"));
                    }
                    Member::Reshaped(from) => {
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

fn member_tokens(change: &Member) -> TokenStream {
    match change {
        Member::New => quote!(::upshift::schema::MemberChange::New),
        Member::Kept(from) => quote!(::upshift::schema::MemberChange::Kept { from: #from }),
        Member::Upgraded(from) => quote!(::upshift::schema::MemberChange::Upgraded { from: #from }),
        Member::Converted {
            from,
            from_ty,
            with,
        } => quote!(::upshift::schema::MemberChange::Converted {
            from: #from,
            from_ty: #from_ty,
            with: #with,
        }),
        Member::Defaulted(None) => {
            quote!(::upshift::schema::MemberChange::Defaulted {
                with: ::core::option::Option::None
            })
        }
        Member::Defaulted(Some(path)) => {
            quote!(::upshift::schema::MemberChange::Defaulted { with: ::core::option::Option::Some(#path) })
        }
        Member::Reshaped(from) => quote!(::upshift::schema::MemberChange::Reshaped { from: #from }),
        Member::ByTransform => quote!(::upshift::schema::MemberChange::ByTransform),
    }
}

fn item_attrs(item: &Item) -> &[syn::Attribute] {
    match item {
        Item::Struct(s) => &s.attrs,
        Item::Enum(e) => &e.attrs,
        _ => &[],
    }
}
