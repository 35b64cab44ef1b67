//! The typed client of a version: every call carries the version's number.

use proc_macro2::TokenStream;
use quote::quote;

use super::VersionGen;

impl VersionGen<'_> {
    /// `pub struct Client` with one async method per interface method.
    pub fn client(&self) -> TokenStream {
        let number = self.v.number;
        let doc = format!(
            " Calls the `{}` service as a v{number} caller: every call is tagged v{number}, and any node \
             that answers v{number} (itself, or through its SOs) serves it.",
            self.svc.trait_name
        );
        let methods = self.v.methods.iter().enumerate().map(|(i, m)| {
            let (name, attrs, ret) = (&m.ident, &m.attrs, &m.ret);
            let args = m.args.iter().map(|a| {
                let (ident, ty) = (&a.ident, &a.ty);
                quote!(#ident: #ty)
            });
            let refs = m.args.iter().map(|a| &a.ident);
            let index = i as u16;
            quote! {
                #(#attrs)*
                pub async fn #name(&self, #(#args),*) -> ::core::result::Result<#ret, ::upshift::CallError> {
                    self.conn
                        .call(super::SERVICE, VERSION, #index, &(#(&#refs,)*), &self.options)
                        .await
                }
            }
        });
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            pub struct Client {
                conn: ::upshift::Connection,
                options: ::upshift::CallOptions,
            }

            impl Client {
                /// A client that calls over `conn` with the connection's default
                /// deadline and no retries.
                pub fn new(conn: ::upshift::Connection) -> Self {
                    Client {
                        options: conn.default_options(),
                        conn,
                    }
                }

                /// The same client with another deadline for each call, retries included.
                pub fn with_deadline(mut self, deadline: ::core::time::Duration) -> Self {
                    self.options.deadline = deadline;
                    self
                }

                /// The same client, retrying calls the node did not run (it was
                /// upgrading, or did not speak this version yet) as `policy` says.
                pub fn with_retry(mut self, policy: ::upshift::RetryPolicy) -> Self {
                    self.options.retry = ::core::option::Option::Some(policy);
                    self
                }

                /// The connection this client calls over.
                pub fn connection(&self) -> &::upshift::Connection {
                    &self.conn
                }

                #(#methods)*
            }
        }
    }
}
