//! `#[upshift::interface]`: arguments (`crate::attr`) → model (`model`) →
//! cross-version checks (`check`, `diff`) → lock → expansion (`expand`), or
//! the fallback beside the errors.

mod check;
mod diff;
mod expand;
mod model;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use upshift_schema::report;

use crate::attr::InterfaceArgs;
use crate::ctxt::Ctxt;
use crate::fallback::{parse_module, with_errors};
use crate::lock::Section;
use expand::{VersionGen, schema};
use model::Service;

/// Expands `#[upshift::interface]`.
pub fn expand(
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
    let lock = crate::lock::check_sections(&cx, &lock_sections(&svc), lock_path);
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

/// The lock sections of every version of an interface.
fn lock_sections(svc: &Service) -> Vec<Section> {
    svc.versions
        .iter()
        .map(|v| Section {
            key: format!("{} v{}", svc.wire_name, v.number),
            lines: v
                .methods
                .iter()
                .map(|m| {
                    let args = m.args.iter().map(|a| (&a.ident, a.ty_text.as_str()));
                    crate::canonical::method_line(&m.ident, args, &m.ret_text)
                })
                .collect(),
            span: v.number_span,
            what: format!("v{} of `{}` is released", v.number, svc.wire_name),
            advice: format!(
                "keep v{} as it was and declare the change as a new version",
                v.number
            ),
            encodings: v
                .methods
                .iter()
                .flat_map(|m| {
                    let args = m
                        .args
                        .iter()
                        .map(move |a| (format!("{}.{}", m.ident, a.ident), &a.ty));
                    args.chain(std::iter::once((format!("{}.return", m.ident), &m.ret)))
                })
                .map(|(label, ty)| crate::lock::Encoded {
                    label,
                    encoding: quote!(<#ty as ::upshift::schema::Schema>::ENCODING),
                    span: syn::spanned::Spanned::span(ty),
                    ty: Some(quote!(#ty)),
                })
                .collect(),
        })
        .collect()
}
