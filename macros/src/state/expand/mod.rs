//! Expansion of a checked, planned state: one module per version with its
//! types, their transforms, the root's loading chain and the metadata.
//! Reads the model and the plan; never reports a user error.

mod downgrade;
mod schema;
mod types;
mod upgrade;
mod versioned;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::model::{State, StateVersion};
use super::plan::VersionPlan;

/// Generates one version module.
pub struct Gen<'a> {
    state: &'a State,
    v: &'a StateVersion,
    prev: Option<&'a StateVersion>,
    plan: &'a VersionPlan<'a>,
}

impl<'a> Gen<'a> {
    pub fn new(state: &'a State, index: usize, plan: &'a VersionPlan<'a>) -> Self {
        Gen {
            state,
            v: &state.versions[index],
            prev: index.checked_sub(1).map(|i| &state.versions[i]),
            plan,
        }
    }

    /// Whether this is the newest version declared.
    pub(super) fn is_last(&self) -> bool {
        self.state
            .versions
            .last()
            .is_some_and(|l| l.number == self.v.number)
    }

    /// `pub mod vN { … }`.
    pub fn module(&self) -> TokenStream {
        let number = self.v.number;
        let module = format_ident!("v{}", number);
        let doc = format!(" Version {number} of the `{}` state.", self.state.name);
        let types = self.v.types.iter().map(|t| self.item(t));
        let parts = self.v.types.iter().filter_map(|t| self.parts_fn(t));
        let upgrades = self.plan.types.iter().filter_map(|p| self.upgrade(p));
        let downgrades = self.plan.types.iter().filter_map(|p| self.downgrade(p));
        let reversible = self.reversible();
        let root = self.versioned();
        let requires = self.require_schemas();
        let schema = self.schema();
        let changes = self.changes_doc();
        quote! {
            #[doc = #doc]
            #[doc = ""]
            #[doc = #changes]
            #[allow(clippy::all)]
            pub mod #module {
                #[allow(unused_imports)]
                use super::*;

                /// This version's number.
                pub const VERSION: ::core::primitive::u32 = #number;

                #(#types)*
                #(#parts)*
                #(#upgrades)*
                #(#downgrades)*
                #reversible
                #root
                #schema
                #requires
            }
        }
    }
}
