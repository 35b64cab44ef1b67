//! `SCHEMA`: the metadata of a version, for checks, tools and diff docs.

use proc_macro2::TokenStream;
use quote::quote;
use upshift_schema::{ArgSchema, Change, InterfaceSchema, MethodSchema, Text};

use super::VersionGen;
use crate::attr;
use crate::interface::diff::{self, Relation};
use crate::interface::model::{Service, Version};

/// Every version's metadata, computed once from the model: the statics and
/// the JSON report are both written from these values.
pub fn values(svc: &Service) -> Vec<InterfaceSchema> {
    svc.versions
        .iter()
        .enumerate()
        .map(|(i, v)| value(svc, v, i.checked_sub(1).map(|p| &svc.versions[p])))
        .collect()
}

fn value(svc: &Service, v: &Version, prev: Option<&Version>) -> InterfaceSchema {
    let methods: Vec<MethodSchema> = v
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| MethodSchema {
            name: m.ident.to_string().into(),
            // The model refuses more methods than a u16 indexes.
            index: i as u16,
            args: m
                .args
                .iter()
                .map(|a| ArgSchema {
                    name: a.ident.to_string().into(),
                    ty: a.ty_text.clone().into(),
                })
                .collect::<Vec<_>>()
                .into(),
            returns: m.ret_text.clone().into(),
            change: match (prev, diff::relation(m, prev)) {
                (Some(_), Relation::Same) => Change::Unchanged,
                (Some(_), Relation::Changed) => Change::Changed,
                _ => Change::Added,
            },
        })
        .collect();
    let removed: Vec<Text> = diff::removed(prev, v)
        .into_iter()
        .map(|m| m.ident.to_string().into())
        .collect();
    InterfaceSchema {
        service: svc.wire_name.clone().into(),
        version: v.number,
        doc: attr::doc_text(&v.docs).into(),
        methods: methods.into(),
        removed: removed.into(),
    }
}

impl VersionGen<'_> {
    /// `pub static SCHEMA: upshift::schema::InterfaceSchema`.
    pub fn schema(&self) -> TokenStream {
        let value = crate::metadata::interface_tokens(&value(self.svc, self.v, self.prev));
        // Every type the version uses must have a schema, so that it is
        // locked with the version; the error points at the type.
        let requires = crate::derive::require_schemas(
            self.v
                .methods
                .iter()
                .flat_map(|m| m.args.iter().map(|a| &a.ty).chain([&m.ret])),
        );
        quote! {
            /// The methods of this version and how each relates to the previous one.
            pub static SCHEMA: ::upshift::schema::InterfaceSchema = #value;

            #requires
        }
    }
}
