//! The server trait a service object implements, and the `Interface` trait
//! that objects and SO chains share.

use proc_macro2::TokenStream;
use quote::quote;

use super::{VersionGen, arg_names, method_sig, so_output};

impl VersionGen<'_> {
    /// `pub trait Kv`: what a service object of this version implements.
    pub fn server_trait(&self) -> TokenStream {
        let ident = &self.v.ident;
        let docs = &self.v.docs;
        let methods = self.v.methods.iter().map(|m| {
            let attrs = &m.attrs;
            let ret = &m.ret;
            let sig = method_sig(m, &quote!(#ret));
            quote!(#(#attrs)* #sig;)
        });
        let forwards = self.v.methods.iter().map(|m| {
            let ret = &m.ret;
            let sig = method_sig(m, &quote!(#ret));
            let name = &m.ident;
            let args = arg_names(m);
            quote!(#sig { <__T as #ident>::#name(&**self, #(#args),*) })
        });
        quote! {
            #(#docs)*
            pub trait #ident: ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#methods)*
            }

            #[automatically_derived]
            impl<__T: #ident + ?::core::marker::Sized> #ident for ::std::sync::Arc<__T> {
                #(#forwards)*
            }
        }
    }

    /// `pub trait Interface`: anything that answers this version's calls,
    /// with `Disallowed` as the possible refusal of an SO.
    pub fn interface_trait(&self) -> TokenStream {
        let server = &self.v.ident;
        let methods = self.v.methods.iter().map(|m| {
            let sig = method_sig(m, &so_output(m));
            let attrs = &m.attrs;
            quote!(#(#attrs)* #sig;)
        });
        let blanket = self.v.methods.iter().map(|m| {
            let sig = method_sig(m, &so_output(m));
            let name = &m.ident;
            let args = arg_names(m);
            quote! {
                #sig {
                    // Create the object's future first, so the wrapper holds
                    // only that future and not a second copy of the arguments.
                    let __future = <__T as #server>::#name(self, #(#args),*);
                    async move { ::core::result::Result::Ok(__future.await) }
                }
            }
        });
        quote! {
            /// Anything that answers this version's calls: a service object of
            /// this version, or a chain of SOs that ends in an object of another.
            pub trait Interface: ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#methods)*
            }

            #[automatically_derived]
            impl<__T: #server> Interface for __T {
                #(#blanket)*
            }
        }
    }
}
