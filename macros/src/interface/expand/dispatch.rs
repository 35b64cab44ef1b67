//! The messages of a version (`Request`, `Response`), the `Dispatcher` that
//! serves them, and the constructors that wire a node's SO chains.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::VersionGen;
use crate::interface::model::Version;

/// An SO chain: the version it answers, its type, and the expression that builds it.
type Chain<'a> = (&'a Version, TokenStream, TokenStream);

impl<'a> VersionGen<'a> {
    /// `pub enum Request`: one variant per method, its arguments as fields.
    pub fn request_enum(&self) -> TokenStream {
        let count = self.v.methods.len();
        let variants = self.v.methods.iter().map(|m| {
            let variant = m.variant();
            let fields = m.args.iter().map(|a| {
                let (ident, ty) = (&a.ident, &a.ty);
                let doc = format!(" Argument `{ident}`.");
                quote!(#[doc = #doc] #ident: #ty)
            });
            let doc = format!(" Arguments of `{}`.", m.ident);
            quote!(#[doc = #doc] #variant { #(#fields),* })
        });
        let indices = self.v.methods.iter().enumerate().map(|(i, m)| {
            let variant = m.variant();
            let i = i as u16;
            quote!(Request::#variant { .. } => #i)
        });
        let decoders = self.v.methods.iter().enumerate().map(|(i, m)| {
            let variant = m.variant();
            let i = i as u16;
            let name = m.ident.to_string();
            let idents: Vec<_> = m.args.iter().map(|a| &a.ident).collect();
            let tys = m.args.iter().map(|a| &a.ty);
            quote! {
                #i => {
                    let (#(#idents,)*): (#(#tys,)*) =
                        ::upshift::__private::decode_args(super::SERVICE, VERSION, #name, __payload)?;
                    ::core::result::Result::Ok(Request::#variant { #(#idents),* })
                }
            }
        });
        quote! {
            /// A call of this version: the method and its arguments. On the wire
            /// the method travels as its index and the fields as the payload.
            #[derive(::upshift::__private::serde::Serialize, ::upshift::__private::serde::Deserialize)]
            #[serde(crate = "::upshift::__private::serde")]
            pub enum Request {
                #(#variants,)*
            }

            impl Request {
                /// The method's index on the wire (its declaration order).
                pub fn method(&self) -> ::core::primitive::u16 {
                    match *self {
                        #(#indices,)*
                    }
                }

                /// Decodes the payload of a call to method `method`.
                pub fn decode(
                    __method: ::core::primitive::u16,
                    __payload: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, ::upshift::DispatchError> {
                    match __method {
                        #(#decoders)*
                        _ => ::core::result::Result::Err(::upshift::DispatchError::UnknownMethod {
                            service: super::SERVICE,
                            version: VERSION,
                            method: __method,
                            count: #count,
                        }),
                    }
                }
            }
        }
    }

    /// `pub enum Response`: one variant per method, holding its return value.
    pub fn response_enum(&self) -> TokenStream {
        let variants = self.v.methods.iter().map(|m| {
            let (variant, ret) = (m.variant(), &m.ret);
            let doc = format!(" Return value of `{}`.", m.ident);
            quote!(#[doc = #doc] #variant(#ret))
        });
        let encoders = self.v.methods.iter().map(|m| {
            let variant = m.variant();
            quote!(Response::#variant(ref __value) => ::upshift::__private::encode_return(__value, __out))
        });
        let decoders = self.v.methods.iter().enumerate().map(|(i, m)| {
            let (variant, i) = (m.variant(), i as u16);
            quote!(#i => ::upshift::__private::decode_reply(__payload).map(Response::#variant))
        });
        quote! {
            /// The answer to a call of this version; on the wire, the payload of an `Ok` reply.
            #[derive(::upshift::__private::serde::Serialize, ::upshift::__private::serde::Deserialize)]
            #[serde(crate = "::upshift::__private::serde")]
            pub enum Response {
                #(#variants,)*
            }

            impl Response {
                /// Appends the return value, as the reply payload carries it.
                pub fn encode(
                    &self,
                    __out: &mut ::std::vec::Vec<::core::primitive::u8>,
                ) -> ::core::result::Result<(), ::upshift::DispatchError> {
                    match *self {
                        #(#encoders,)*
                    }
                }

                /// Reads the reply payload of a call to method `method`;
                /// `None` when it is not one.
                pub fn decode(
                    __method: ::core::primitive::u16,
                    __payload: &[::core::primitive::u8],
                ) -> ::core::option::Option<Self> {
                    match __method {
                        #(#decoders,)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[automatically_derived]
            impl ::upshift::conformance::Reply for Response {
                const VERSION: ::core::primitive::u32 = VERSION;

                fn decode(
                    method: ::core::primitive::u16,
                    payload: &[::core::primitive::u8],
                ) -> ::core::option::Option<Self> {
                    Response::decode(method, payload)
                }
            }
        }
    }

    /// `Dispatcher<I>`: serves calls through any `Interface`.
    pub fn dispatcher(&self) -> TokenStream {
        let count = self.v.methods.len();
        // Each arm decodes its arguments, awaits the method and encodes its
        // return value: the per-call future holds one method's state, not
        // the `Request` and `Response` enums of every method.
        let arms = self.v.methods.iter().enumerate().map(|(i, m)| {
            let i = i as u16;
            let (name, text) = (&m.ident, m.ident.to_string());
            let args: Vec<_> = m.args.iter().map(|a| &a.ident).collect();
            let tys = m.args.iter().map(|a| &a.ty);
            quote! {
                #i => {
                    let (#(#args,)*): (#(#tys,)*) =
                        ::upshift::__private::decode_args(super::SERVICE, VERSION, #text, __payload)?;
                    let __value = Interface::#name(&self.0, #(#args),*).await?;
                    ::upshift::__private::encode_return(&__value, __out)
                }
            }
        });
        // What each method's arguments and reply encode as, for tests that
        // draw calls (`upshift::conformance`) and read replies.
        // Read through `require`, spanned at the type as the schema check
        // is, so a type without a schema is reported once, not twice.
        let encoding = |ty: &syn::Type| {
            let span = syn::spanned::Spanned::span(ty);
            quote::quote_spanned!(span=> ::upshift::schema::require::<#ty>())
        };
        let encodings = self.v.methods.iter().map(|m| {
            let args = m.args.iter().map(|a| encoding(&a.ty));
            let ret = encoding(&m.ret);
            quote!(::upshift::schema::MethodEncoding {
                args: &[#(#args),*],
                returns: #ret,
            })
        });
        quote! {
            /// Serves this version's calls on a node through `I`: the node's
            /// object, or an SO chain that ends in it.
            #[derive(::core::fmt::Debug)]
            pub struct Dispatcher<I>(pub I);

            #[automatically_derived]
            impl<I: Interface> ::upshift::Dispatch for Dispatcher<I> {
                fn schema(&self) -> &'static ::upshift::schema::InterfaceSchema {
                    &SCHEMA
                }

                fn encodings(&self) -> &'static [::upshift::schema::MethodEncoding] {
                    const ENCODINGS: &[::upshift::schema::MethodEncoding] = &[#(#encodings),*];
                    ENCODINGS
                }

                // A version without methods has only the unknown-method arm.
                #[allow(unreachable_code)]
                fn call<'__a>(
                    &'__a self,
                    __method: ::core::primitive::u16,
                    __payload: &'__a [::core::primitive::u8],
                    __out: &'__a mut ::std::vec::Vec<::core::primitive::u8>,
                ) -> impl ::core::future::Future<Output = ::core::result::Result<(), ::upshift::DispatchError>>
                       + ::core::marker::Send
                       + '__a {
                    async move {
                        match __method {
                            #(#arms)*
                            _ => ::core::result::Result::Err(::upshift::DispatchError::UnknownMethod {
                                service: super::SERVICE,
                                version: VERSION,
                                method: __method,
                                count: #count,
                            }),
                        }
                    }
                }
            }
        }
    }

    /// `service(object)` and `service_with_future(object)`: a node's
    /// `upshift::Service` with the SO chains to the other versions.
    pub fn constructors(&self) -> TokenStream {
        let ident = &self.v.ident;
        // Each chain is (version it answers, its type, the expression that builds it).
        let object = (
            quote!(::std::sync::Arc<__O>),
            quote!(<::std::sync::Arc<__O> as ::core::clone::Clone>::clone(
                &__object
            )),
        );
        let chain = |versions: &mut dyn Iterator<Item = &'a Version>, so: &str| -> Vec<Chain<'a>> {
            let so = format_ident!("{}", so);
            versions
                .scan(object.clone(), |(ty, build), v| {
                    let m = self.sibling(v);
                    *ty = quote!(#m::#so<#ty>);
                    *build = quote!(#m::#so::new(#build));
                    Some((v, ty.clone(), build.clone()))
                })
                .collect()
        };
        let past = chain(&mut self.svc.versions[..self.index].iter().rev(), "PastSo");
        let future = chain(&mut self.svc.versions[self.index + 1..].iter(), "FutureSo");
        // Bounding each link by its SO trait makes a missing SO impl an error
        // at the caller of `service` that names the trait to implement.
        let bounds = |chains: &[Chain<'_>], so_trait: &str| {
            let so_trait = format_ident!("{}", so_trait);
            chains
                .iter()
                .map(|(v, ty, _)| {
                    let m = self.sibling(v);
                    quote!(#ty: #m::#so_trait,)
                })
                .collect::<Vec<_>>()
        };
        let installs = |chains: &[Chain<'_>]| {
            chains
                .iter()
                .map(|(v, _, build)| {
                    let m = self.sibling(v);
                    quote!(.with_version(#m::Dispatcher(#build)))
                })
                .collect::<Vec<_>>()
        };
        let (past_bounds, past_installs) = (bounds(&past, "Past"), installs(&past));
        let (future_bounds, future_installs) = (bounds(&future, "Future"), installs(&future));
        let newest = self.svc.versions.last().map_or(self.v.number, |v| v.number);
        let future_doc = if future.is_empty() {
            format!(
                " The same as [`service`]: v{newest} is the newest version, there is nothing to simulate ahead."
            )
        } else {
            format!(
                " Like [`service`], and also serves every newer version (up to v{newest}) through the \
                 chain of future SOs."
            )
        };
        quote! {
            /// A node's service at this version: `object` answers this
            /// version's calls, and the chain of past SOs answers every older one.
            pub fn service<__O: #ident>(object: __O) -> ::upshift::Service
            where
                #(#past_bounds)*
            {
                let __object = ::std::sync::Arc::new(object);
                ::upshift::Service::new(Dispatcher(<::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object)))
                    #(#past_installs)*
            }

            #[doc = #future_doc]
            pub fn service_with_future<__O: #ident>(object: __O) -> ::upshift::Service
            where
                #(#past_bounds)*
                #(#future_bounds)*
            {
                let __object = ::std::sync::Arc::new(object);
                ::upshift::Service::new(Dispatcher(<::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object)))
                    #(#past_installs)*
                    #(#future_installs)*
            }
        }
    }
}
