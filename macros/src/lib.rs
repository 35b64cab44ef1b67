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

/// Declares every version of a service interface. Use it as
/// `#[upshift::interface]` through the `upshift` crate, whose documentation
/// of `upshift::interface` describes the input, what is generated and the
/// options.
#[proc_macro_attribute]
pub fn interface(args: TokenStream, input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    interface::expand(args.into(), input.into(), file).into()
}

/// Declares every version of a node's persistent state. Use it as
/// `#[upshift::state]` through the `upshift` crate, whose documentation of
/// `upshift::state` describes the input, the field rules and the options.
#[proc_macro_attribute]
pub fn state(args: TokenStream, input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    state::expand(args.into(), input.into(), file).into()
}

/// Describes a user type that appears in messages or state, and locks its
/// shape once released. Use it as `#[derive(upshift::Schema)]`; the `upshift`
/// crate's documentation of `upshift::Schema` lists its options.
#[proc_macro_derive(Schema, attributes(upshift))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    let file = proc_macro::Span::call_site().local_file();
    derive::schema(input.into(), file).into()
}

#[cfg(test)]
mod snapshot_tests;
