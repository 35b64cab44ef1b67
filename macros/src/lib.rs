//! Procedural macros of upshift. Depend on the `upshift` crate, which
//! re-exports them with their documentation.
//!
//! The pipeline is attributes (`attr`) → model (`model`, `state::model`) →
//! checks (`check`, `diff`, `lock`) → expansion (`expand`, `derive`).

mod attr;
mod canonical;
mod ctxt;
mod derive;
mod encoding;
mod fallback;
mod interface;
mod lock;
mod metadata;
mod state;

use proc_macro::TokenStream;

/// Declares every version of a service interface; see the `upshift` crate.
#[proc_macro_attribute]
pub fn interface(args: TokenStream, input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    interface::expand(args.into(), input.into(), file).into()
}

/// Declares every version of a node's persistent state; see the `upshift` crate.
#[proc_macro_attribute]
pub fn state(args: TokenStream, input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    state::expand(args.into(), input.into(), file).into()
}

/// Describes a user type that appears in messages or state, and locks its
/// shape once released; see the `upshift` crate.
#[proc_macro_derive(Schema, attributes(upshift))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    derive::schema(input.into(), file).into()
}

#[cfg(test)]
mod snapshot_tests;
