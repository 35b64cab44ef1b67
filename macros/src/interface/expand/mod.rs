//! Expansion of a checked interface: the tokens of every version module.
//!
//! [`VersionGen`] has one method per emitted item; the files of this module
//! group them by artifact.

mod client;
mod dispatch;
pub(super) mod schema;
mod so;
mod traits;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::diff;
use super::model::{Method, Service, Version};

/// Generates the items of one version module.
pub struct VersionGen<'a> {
    svc: &'a Service,
    index: usize,
    v: &'a Version,
    prev: Option<&'a Version>,
    next: Option<&'a Version>,
}

impl<'a> VersionGen<'a> {
    pub(super) fn new(svc: &'a Service, index: usize) -> Self {
        VersionGen {
            svc,
            index,
            v: &svc.versions[index],
            prev: index.checked_sub(1).map(|i| &svc.versions[i]),
            next: svc.versions.get(index + 1),
        }
    }

    pub(super) fn module_ident(&self) -> Ident {
        format_ident!("v{}", self.v.number)
    }

    /// The path of a neighbouring version's module, seen from this one.
    fn sibling(&self, v: &Version) -> TokenStream {
        let m = format_ident!("v{}", v.number);
        quote!(super::#m)
    }

    pub(super) fn module(&self) -> TokenStream {
        let module = self.module_ident();
        let number = self.v.number;
        let heading = format!(
            " Version {number} of the `{}` interface.",
            self.svc.trait_name
        );
        let summary = format!(" {}", diff::summary(self.prev, self.v));
        let docs = &self.v.docs;
        let items = [
            self.server_trait(),
            self.interface_trait(),
            self.request_enum(),
            self.response_enum(),
            self.dispatcher(),
            self.client(),
            self.past_so(),
            self.future_so(),
            self.constructors(),
            self.schema(),
        ];
        quote! {
            #[doc = #heading]
            #[doc = ""]
            #(#docs)*
            #[doc = ""]
            #[doc = #summary]
            pub mod #module {
                #[allow(unused_imports)]
                use super::*;

                /// This version's number.
                pub const VERSION: ::core::primitive::u32 = #number;

                #(#items)*
            }
        }
    }
}

/// `fn name(&self, a: A, b: B) -> impl Future<Output = OUT> + Send`, the
/// shape of every generated async method declaration.
fn method_sig(m: &Method, output: &TokenStream) -> TokenStream {
    let ident = &m.ident;
    let args = m.args.iter().map(|a| {
        let (ident, ty) = (&a.ident, &a.ty);
        quote!(#ident: #ty)
    });
    quote! {
        fn #ident(&self, #(#args),*)
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    }
}

/// The argument names of a method, for forwarding calls.
fn arg_names(m: &Method) -> impl Iterator<Item = &Ident> {
    m.args.iter().map(|a| &a.ident)
}

/// `Result<RET, Disallowed>`, what SOs and `Interface` methods return.
fn so_output(m: &Method) -> TokenStream {
    let ret = &m.ret;
    quote!(::core::result::Result<#ret, ::upshift::Disallowed>)
}
