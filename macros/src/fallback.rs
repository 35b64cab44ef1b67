//! The item an attribute macro stands on, and what is emitted beside errors.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Item, ItemMod};

use crate::ctxt::Ctxt;

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
