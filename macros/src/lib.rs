//! Procedural macros of upshift. Depend on the `upshift` crate, which
//! re-exports them with their documentation.
//!
//! The pipeline is attributes ([`attr`](crate::attr)) → model
//! ([`model`](crate::model)) → checks ([`check`](crate::check),
//! [`diff`](crate::diff)) → expansion ([`expand`](crate::expand)).

mod attr;
mod check;
mod ctxt;
mod diff;
mod expand;
mod model;

use proc_macro::TokenStream;

/// Declares every version of a service interface; see the `upshift` crate.
#[proc_macro_attribute]
pub fn interface(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::interface(args.into(), input.into()).into()
}

#[cfg(test)]
mod snapshot_tests;
