//! `SCHEMA`: the metadata of a version, for checks, tools and diff docs.

use proc_macro2::TokenStream;
use quote::quote;

use super::VersionGen;
use crate::attr;
use crate::diff::{self, Relation};

impl VersionGen<'_> {
    /// `pub static SCHEMA: upshift::schema::InterfaceSchema`.
    pub fn schema(&self) -> TokenStream {
        let number = self.v.number;
        let doc = attr::doc_text(&self.v.docs);
        let methods = self.v.methods.iter().enumerate().map(|(i, m)| {
            let name = m.ident.to_string();
            let index = i as u16;
            let returns = &m.ret_text;
            let args = m.args.iter().map(|a| {
                let (name, ty) = (a.ident.to_string(), &a.ty_text);
                quote!(::upshift::schema::ArgSchema { name: #name, ty: #ty })
            });
            let change = match (self.prev, diff::relation(m, self.prev)) {
                (Some(_), Relation::Same) => quote!(Unchanged),
                (Some(_), Relation::Changed) => quote!(Changed),
                _ => quote!(Added),
            };
            quote! {
                ::upshift::schema::MethodSchema {
                    name: #name,
                    index: #index,
                    args: &[#(#args),*],
                    returns: #returns,
                    change: ::upshift::schema::Change::#change,
                }
            }
        });
        let removed = diff::removed(self.prev, self.v)
            .into_iter()
            .map(|m| m.ident.to_string());
        // Every type the version uses must have a schema, so that it is
        // locked with the version; the error points at the type.
        let requires = crate::model::require_schemas(
            self.v
                .methods
                .iter()
                .flat_map(|m| m.args.iter().map(|a| &a.ty).chain([&m.ret])),
        );
        quote! {
            /// The methods of this version and how each relates to the previous one.
            pub static SCHEMA: ::upshift::schema::InterfaceSchema = ::upshift::schema::InterfaceSchema {
                service: super::SERVICE,
                version: #number,
                doc: #doc,
                methods: &[#(#methods),*],
                removed: &[#(#removed),*],
            };

            #requires
        }
    }
}
