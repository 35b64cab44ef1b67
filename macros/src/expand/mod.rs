//! Expansion: from the checked model to the tokens of every version module.
//!
//! [`VersionGen`] has one method per emitted item; the files of this module
//! group them by artifact.

mod client;
mod dispatch;
mod schema;
mod so;
pub mod state;
mod traits;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::{Item, ItemMod};

use upshift_schema::report;

use crate::attr::InterfaceArgs;
use crate::ctxt::Ctxt;
use crate::model::{Method, Service, Version};
use crate::{check, diff};

/// Expands `#[upshift::interface]`.
pub fn interface(
    args: TokenStream,
    input: TokenStream,
    file: Option<std::path::PathBuf>,
) -> TokenStream {
    let cx = Ctxt::default();
    let args = InterfaceArgs::parse(&cx, args);
    let lock_option = args.lock.as_ref().map(|l| l.value());
    let usage = "#[upshift::interface] goes on a module that holds one trait per version, as in \
                 `mod kv { #[version(1)] pub trait Kv { ... } }`";
    let (module, bodiless) = match parse_module(&cx, input, usage) {
        Ok(parsed) => parsed,
        Err(item) => return with_errors(cx, item),
    };
    let Some(svc) = Service::from_module(&cx, args, module) else {
        return with_errors(cx, bodiless);
    };
    check::service(&cx, &svc);
    let lock_path = crate::lock::path(lock_option.as_deref(), file);
    let values = schema::values(&svc);
    let docs_json = upshift_schema::interface_json(&values);
    if let Some(path) = &lock_path {
        report::write(&[report::Entry::Docs {
            lock: path.clone(),
            key: format!("interface {}", svc.wire_name),
            versions: report::Definition::Interface(values),
        }]);
    }
    let lock = crate::lock::check_sections(&cx, &crate::lock::interface_sections(&svc), lock_path);
    let lock_errors = &lock.errors;
    match cx.check() {
        Ok(()) => {
            let output = generate(&svc, lock.tracking, &docs_json);
            quote!(#output #lock_errors)
        }
        Err(e) => {
            let fallback = fallback(&svc);
            let errors = e.into_compile_error();
            quote!(#fallback #errors #lock_errors)
        }
    }
}

/// The module an attribute macro stands on, and what to emit should no model
/// come of it: a module without a body as written (it holds nothing to
/// strip), anything else dropped. For input that is not a module, records
/// `usage` and returns the input to emit beside the error.
pub(crate) fn parse_module(
    cx: &Ctxt,
    input: TokenStream,
    usage: &str,
) -> Result<(ItemMod, TokenStream), TokenStream> {
    match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Mod(module)) => {
            let bodiless = if module.content.is_none() {
                quote!(#module)
            } else {
                TokenStream::new()
            };
            Ok((module, bodiless))
        }
        Ok(other) => {
            cx.error_spanned_by(item_head(&other), usage);
            Err(input)
        }
        Err(e) => {
            cx.syn_error(e);
            Err(input)
        }
    }
}

/// `item`, followed by every error recorded in `cx`.
pub(crate) fn with_errors(cx: Ctxt, item: TokenStream) -> TokenStream {
    match cx.check() {
        Ok(()) => item,
        Err(e) => {
            let errors = e.into_compile_error();
            quote!(#item #errors)
        }
    }
}

/// The first tokens of an item, so an error does not underline a whole body.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Trait(t) => {
            let (vis, kw, ident) = (&t.vis, &t.trait_token, &t.ident);
            quote!(#vis #kw #ident)
        }
        Item::Struct(s) => {
            let (vis, kw, ident) = (&s.vis, &s.struct_token, &s.ident);
            quote!(#vis #kw #ident)
        }
        Item::Enum(e) => {
            let (vis, kw, ident) = (&e.vis, &e.enum_token, &e.ident);
            quote!(#vis #kw #ident)
        }
        Item::Fn(f) => {
            let (vis, sig) = (&f.vis, &f.sig);
            quote!(#vis #sig)
        }
        other => quote!(#other),
    }
}

/// What is emitted beside errors: the module's own items and each version's
/// server trait, so the user sees the real errors and few follow-on ones.
fn fallback(svc: &Service) -> TokenStream {
    let mut seen = Vec::new();
    let versions = svc.versions.iter().enumerate().filter_map(|(i, v)| {
        if seen.contains(&v.number) {
            return None;
        }
        seen.push(v.number);
        let g = VersionGen::new(svc, i);
        let module = g.module_ident();
        let server = g.server_trait();
        Some(quote! {
            #[allow(unused_imports, dead_code)]
            pub mod #module {
                use super::*;
                #server
            }
        })
    });
    let (attrs, vis, ident, items) = (&svc.attrs, &svc.vis, &svc.module, &svc.items);
    quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*
            #(#versions)*
        }
    }
}

/// `lock_tracking` makes the crate depend on its lock file and lock mode.
fn generate(svc: &Service, lock_tracking: TokenStream, docs_json: &str) -> TokenStream {
    let modules = (0..svc.versions.len()).map(|i| VersionGen::new(svc, i).module());
    let schemas = svc.versions.iter().map(|v| {
        let m = format_ident!("v{}", v.number);
        quote!(&#m::SCHEMA)
    });
    let (attrs, vis, ident, items) = (&svc.attrs, &svc.vis, &svc.module, &svc.items);
    let wire_name = &svc.wire_name;
    quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*

            /// The service's name on the wire.
            pub const SERVICE: &::core::primitive::str = #wire_name;

            /// The schema of every version, ascending.
            pub static VERSIONS: &[&::upshift::schema::InterfaceSchema] = &[#(#schemas),*];

            #[doc(hidden)]
            pub const __DOCS_JSON: &::core::primitive::str = #docs_json;

            #lock_tracking

            #(#modules)*
        }
    }
}

/// Generates the items of one version module.
pub struct VersionGen<'a> {
    svc: &'a Service,
    index: usize,
    v: &'a Version,
    prev: Option<&'a Version>,
    next: Option<&'a Version>,
}

impl<'a> VersionGen<'a> {
    fn new(svc: &'a Service, index: usize) -> Self {
        VersionGen {
            svc,
            index,
            v: &svc.versions[index],
            prev: index.checked_sub(1).map(|i| &svc.versions[i]),
            next: svc.versions.get(index + 1),
        }
    }

    fn module_ident(&self) -> Ident {
        format_ident!("v{}", self.v.number)
    }

    /// The path of a neighbouring version's module, seen from this one.
    fn sibling(&self, v: &Version) -> TokenStream {
        let m = format_ident!("v{}", v.number);
        quote!(super::#m)
    }

    fn module(&self) -> TokenStream {
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
