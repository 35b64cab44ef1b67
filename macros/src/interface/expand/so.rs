//! Past and future simulation objects: the structs, the traits the developer
//! implements, and their `Interface` impls.
//!
//! A method whose signature is the same in the neighbouring version gets a
//! default body that delegates to the neighbour; every other method is
//! required, so the compiler names exactly what the developer must write.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{VersionGen, arg_names, method_sig, so_output};
use crate::interface::diff::{self, Relation};
use crate::interface::model::Version;

/// Which side of the version the SO simulates.
#[derive(Clone, Copy)]
enum Side {
    /// Serves this version's callers on a node of the next version.
    Past,
    /// Serves this version's callers on a node of the previous version.
    Future,
}

impl VersionGen<'_> {
    /// `PastSo<N>` and `trait Past`, when a next version exists.
    pub fn past_so(&self) -> TokenStream {
        self.next
            .map_or_else(TokenStream::new, |next| self.so(Side::Past, next))
    }

    /// `FutureSo<P>` and `trait Future`, when a previous version exists.
    pub fn future_so(&self) -> TokenStream {
        self.prev
            .map_or_else(TokenStream::new, |prev| self.so(Side::Future, prev))
    }

    fn so(&self, side: Side, other: &Version) -> TokenStream {
        let number = self.v.number;
        let other_number = other.number;
        let other_mod = self.sibling(other);
        let (so, so_trait, access, field, param, doc) = match side {
            Side::Past => (
                format_ident!("PastSo"),
                format_ident!("Past"),
                format_ident!("__PastNext"),
                format_ident!("next"),
                format_ident!("N"),
                format!(
                    " Past SO: serves v{number} callers on a node that runs v{other_number}, \
                     through `next`, anything that answers v{other_number} calls."
                ),
            ),
            Side::Future => (
                format_ident!("FutureSo"),
                format_ident!("Future"),
                format_ident!("__FuturePrev"),
                format_ident!("prev"),
                format_ident!("P"),
                format!(
                    " Future SO: serves v{number} callers on a node that still runs v{other_number}, \
                     through `prev`, anything that answers v{other_number} calls."
                ),
            ),
        };
        let accessor = format_ident!("__{}", field);
        let field_doc = format!(" The v{other_number} side this SO calls into.");
        let trait_doc = format!(
            " What the developer writes for [`{so}`]: every v{number} method whose signature differs in \
             v{other_number} (or that v{other_number} lacks); the others delegate by default."
        );
        let methods = self.v.methods.iter().map(|m| {
            let sig = method_sig(m, &so_output(m));
            let attrs = &m.attrs;
            match diff::relation(m, Some(other)) {
                Relation::Same => {
                    let name = &m.ident;
                    let args = arg_names(m);
                    quote! {
                        #(#attrs)*
                        #sig {
                            <<Self as #access>::Target as #other_mod::Interface>::#name(self.#accessor(), #(#args),*)
                        }
                    }
                }
                Relation::Changed | Relation::Absent => quote!(#(#attrs)* #sig;),
            }
        });
        let forwards = self.v.methods.iter().map(|m| {
            let sig = method_sig(m, &so_output(m));
            let name = &m.ident;
            let args = arg_names(m);
            quote!(#sig { <Self as #so_trait>::#name(self, #(#args),*) })
        });
        quote! {
            #[doc = #doc]
            #[derive(::core::fmt::Debug, ::core::clone::Clone)]
            pub struct #so<#param> {
                #[doc = #field_doc]
                pub #field: #param,
            }

            impl<#param> #so<#param> {
                /// Wraps the neighbouring version's object or SO chain.
                pub const fn new(#field: #param) -> Self {
                    #so { #field }
                }
            }

            #[doc(hidden)]
            pub trait #access {
                type Target: #other_mod::Interface;
                fn #accessor(&self) -> &Self::Target;
            }

            #[automatically_derived]
            impl<#param: #other_mod::Interface> #access for #so<#param> {
                type Target = #param;
                fn #accessor(&self) -> &#param {
                    &self.#field
                }
            }

            #[doc = #trait_doc]
            pub trait #so_trait: #access + ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#methods)*
            }

            #[automatically_derived]
            impl<#param: #other_mod::Interface> Interface for #so<#param>
            where
                Self: #so_trait,
            {
                #(#forwards)*
            }
        }
    }
}
