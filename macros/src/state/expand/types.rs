//! Each version's types as emitted: the user's item with serde derives and
//! its `Schema` impl, `__into_parts` for the next version's transform, and
//! the schema requirement of every field type.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::{Item, Visibility};

use super::Gen;
use crate::encoding::Data;
use crate::state::model::{Shape, StateType};

impl Gen<'_> {
    /// The user's item with serde derives; private types become `pub(super)`
    /// so the next version's transform can name them.
    pub(super) fn item(&self, t: &StateType) -> TokenStream {
        let mut item = t.item.clone();
        let vis = match &mut item {
            Item::Struct(s) => &mut s.vis,
            Item::Enum(e) => &mut e.vis,
            _ => return quote!(#item),
        };
        if matches!(vis, Visibility::Inherited) {
            *vis = syn::parse_quote!(pub(super));
        }
        let (ident, attrs, data) = match &t.written {
            Item::Struct(s) => (&s.ident, &s.attrs, Data::Struct(&s.fields)),
            Item::Enum(e) => (&e.ident, &e.attrs, Data::Enum(&e.variants)),
            _ => return quote!(#item),
        };
        let encoding = crate::encoding::tokens(ident, attrs, data);
        quote! {
            #[derive(::upshift::__private::serde::Serialize, ::upshift::__private::serde::Deserialize)]
            #[serde(crate = "::upshift::__private::serde")]
            #item

            #[automatically_derived]
            impl ::upshift::schema::Schema for #ident {
                const ENCODING: &'static ::upshift::schema::Encoding = #encoding;
            }
        }
    }

    /// Every field type of this version must have a schema, so a user type
    /// stored in the state is locked with it.
    pub(super) fn require_schemas(&self) -> TokenStream {
        let mut types = Vec::new();
        for t in &self.v.types {
            match &t.item {
                Item::Struct(s) => types.extend(s.fields.iter().map(|f| &f.ty)),
                Item::Enum(e) => types.extend(
                    e.variants
                        .iter()
                        .flat_map(|v| v.fields.iter().map(|f| &f.ty)),
                ),
                _ => {}
            }
        }
        crate::derive::require_schemas(types)
    }

    /// `__into_parts`: a struct's fields by value, for the next version's
    /// transform, which cannot see private fields; with `rollback`, below
    /// the newest version, also `__from_parts`, which builds it from them
    /// for the next version's downgrade.
    pub(super) fn parts_fn(&self, t: &StateType) -> Option<TokenStream> {
        let Shape::Struct(fields) = &t.shape else {
            return None;
        };
        let ident = &t.ident;
        let members: Vec<_> = fields.iter().map(|f| &f.member).collect();
        let bindings: Vec<Ident> = (0..fields.len())
            .map(|i| format_ident!("__f{}", i))
            .collect();
        let tys: Vec<_> = fields.iter().map(|f| &f.ty).collect();
        let from_parts = (self.state.rollback && !self.is_last()).then(|| {
            quote! {
                #[doc(hidden)]
                #[allow(dead_code, clippy::too_many_arguments)]
                pub fn __from_parts(#(#bindings: #tys),*) -> Self {
                    #ident { #(#members: #bindings),* }
                }
            }
        });
        Some(quote! {
            impl #ident {
                #[doc(hidden)]
                pub fn __into_parts(self) -> (#(#tys,)*) {
                    let #ident { #(#members: #bindings),* } = self;
                    (#(#bindings,)*)
                }
                #from_parts
            }
        })
    }
}
