//! `#[upshift::state]`, in the stages of the interface macro: arguments
//! (`args`) → model (`model`) → checks (`check`) and the transform plan
//! (`plan`, computed once, reporting every field or variant that cannot be
//! derived) → lock → expansion (`expand`, which reports nothing), or the
//! fallback beside the errors.

mod args;
mod check;
mod expand;
pub mod model;
mod plan;

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use upshift_schema::report;

use crate::ctxt::Ctxt;
use crate::fallback::with_errors;
use args::StateArgs;
use expand::Gen;
use model::State;
use plan::VersionPlan;

/// Expands `#[upshift::state]`.
pub fn expand(
    args: TokenStream,
    input: TokenStream,
    file: Option<std::path::PathBuf>,
) -> TokenStream {
    let cx = Ctxt::default();
    let args = StateArgs::parse(&cx, args);
    let lock_option = args.lock.as_ref().map(|l| l.value());
    let usage = "#[upshift::state] goes on a module that holds the versioned types, as in \
                 `mod store { #[version(1)] pub struct Store { ... } }`";
    let (module, bodiless) = match crate::fallback::parse_module(&cx, input, usage) {
        Ok(parsed) => parsed,
        Err(item) => return with_errors(cx, item),
    };
    let Some(state) = State::from_module(&cx, args, module) else {
        return with_errors(cx, bodiless);
    };
    // Checks and the transform plan, version by version: every error of the
    // input is known before anything is generated.
    let plans: Vec<VersionPlan> = state
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let prev = i.checked_sub(1).map(|p| &state.versions[p]);
            check::version(&cx, v, prev);
            let plan = VersionPlan::new(&cx, v, prev);
            plan.check_rollback(&cx, state.rollback, v.number);
            plan
        })
        .collect();
    // Released state versions are locked like interface versions.
    let lock_path = crate::lock::path(lock_option.as_deref(), file);
    let sections: Vec<_> = state
        .versions
        .iter()
        .map(|v| crate::lock::Section {
            key: format!("state {} v{}", state.name, v.number),
            lines: v
                .types
                .iter()
                .map(|t| crate::canonical::shape_line(&t.item))
                .collect(),
            span: v.types[0].ident.span(),
            what: format!("v{} of state `{}` is released", v.number, state.name),
            advice: "keep it as it was and declare the change as a new version".into(),
            encodings: {
                let (module, root) = (format_ident!("v{}", v.number), &v.types[0].ident);
                vec![crate::lock::Encoded {
                    label: root.to_string(),
                    encoding: quote!(<#module::#root as ::upshift::schema::Schema>::ENCODING),
                    span: root.span(),
                    ty: Some(quote!(#module::#root)),
                }]
            },
        })
        .collect();
    let gens: Vec<Gen> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| Gen::new(&state, i, plan))
        .collect();
    let values: Vec<_> = gens.iter().map(Gen::value).collect();
    let docs_json = upshift_schema::state_json(&values);
    if let Some(path) = &lock_path {
        report::write(&[report::Entry::Docs {
            lock: path.clone(),
            key: format!("state {}", state.name),
            versions: report::Definition::State(values),
        }]);
    }
    let lock = crate::lock::check_sections(&cx, &sections, lock_path);
    let lock_errors = lock.errors;
    if cx.has_errors() {
        let output = with_errors(cx, fallback(&state));
        return quote!(#output #lock_errors);
    }
    let lock_tracking = lock.tracking;
    let versions = gens.iter().map(Gen::module);
    let (attrs, vis, ident, items) = (&state.attrs, &state.vis, &state.module, &state.items);
    let name = &state.name;
    let latest = state.versions.last().map_or(0, |v| v.number);
    let schemas = state.versions.iter().map(|v| {
        let m = format_ident!("v{}", v.number);
        quote!(&#m::SCHEMA)
    });
    let output = quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*

            /// The state's name in snapshot headers and file names.
            pub const NAME: &::core::primitive::str = #name;

            /// The newest version declared.
            pub const LATEST: ::core::primitive::u32 = #latest;

            /// Every version's types and how each came from the one before, oldest first.
            pub static VERSIONS: &[&::upshift::schema::StateSchema] = &[#(#schemas),*];

            #[doc(hidden)]
            pub const __DOCS_JSON: &::core::primitive::str = #docs_json;

            #lock_tracking

            #(#versions)*
        }
        #lock_errors
    };
    with_errors(cx, output)
}

/// What is emitted beside errors: the module's items and each version's
/// types as written, without generated impls, so only the real errors show.
fn fallback(state: &State) -> TokenStream {
    let mut numbers = BTreeSet::new();
    let versions = state
        .versions
        .iter()
        .filter(|v| numbers.insert(v.number))
        .map(|v| {
            let module = format_ident!("v{}", v.number);
            let mut names = BTreeSet::new();
            // Without the serde derive, serde's attributes would not resolve.
            let types = v
                .types
                .iter()
                .filter(|t| names.insert(t.ident.to_string()))
                .map(|t| without_serde(&t.item));
            quote! {
                #[allow(dead_code, unused_imports)]
                pub mod #module {
                    use super::*;
                    #(#types)*
                }
            }
        });
    let (attrs, vis, ident, items) = (&state.attrs, &state.vis, &state.module, &state.items);
    quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*
            #(#versions)*
        }
    }
}

/// `item` without `#[serde(...)]` attributes on it, its fields and variants.
fn without_serde(item: &syn::Item) -> syn::Item {
    let mut item = item.clone();
    let strip = |attrs: &mut Vec<syn::Attribute>| attrs.retain(|a| !a.path().is_ident("serde"));
    let strip_fields =
        |fields: &mut syn::Fields| fields.iter_mut().for_each(|f| strip(&mut f.attrs));
    match &mut item {
        syn::Item::Struct(s) => {
            strip(&mut s.attrs);
            strip_fields(&mut s.fields);
        }
        syn::Item::Enum(e) => {
            strip(&mut e.attrs);
            for v in &mut e.variants {
                strip(&mut v.attrs);
                strip_fields(&mut v.fields);
            }
        }
        _ => {}
    }
    item
}
