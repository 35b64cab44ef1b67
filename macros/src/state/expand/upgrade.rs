//! `impl Upgrade<vN-1::Old> for New`: the transform of each type, written
//! from the version's plan. Reports nothing: the plan did.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::Gen;
use crate::state::model::{Default_, StateField};
use crate::state::plan::{FieldPlan, Source, Step, TypePlan};

impl Gen<'_> {
    /// `impl Upgrade<vP::Old> for New`, for a type with a predecessor.
    pub(super) fn upgrade(&self, plan: &TypePlan<'_>) -> Option<TokenStream> {
        let t = plan.ty;
        let prev = self.prev?;
        let prev_mod = format_ident!("v{}", prev.number);
        let ident = &t.ident;
        let err = Err_ {
            from: prev.number,
            to: self.v.number,
            type_name: ident.to_string(),
        };
        let (old, body) = match &plan.step {
            Step::New | Step::Invalid => return None,
            Step::Transform { old, with } => {
                let error = err.build(None, quote!(__reason));
                let body = quote! {
                    match ::upshift::__private::Outcome::<Self>::into_outcome(#with(__old)) {
                        ::core::result::Result::Ok(__new) => ::core::result::Result::Ok(__new),
                        ::core::result::Result::Err(__reason) => ::core::result::Result::Err(#error),
                    }
                };
                (old, body)
            }
            Step::Fields { old, fields } => {
                let old_ident = &old.ident;
                let crate::state::model::Shape::Struct(old_fields) = &old.shape else {
                    return None;
                };
                let bindings = old_fields.iter().map(binding);
                let inits = fields.iter().map(|f| init(&err, f));
                let body = quote! {
                    let (#(#bindings,)*) = super::#prev_mod::#old_ident::__into_parts(__old);
                    ::core::result::Result::Ok(#ident { #(#inits),* })
                };
                (old, body)
            }
            Step::Variants { old, arms } => {
                let old_ident = &old.ident;
                let arms = arms.iter().map(|arm| {
                    let (ovi, nvi) = (&arm.old.ident, &arm.new.ident);
                    let members = arm.old.fields.iter().map(|f| &f.member);
                    let bindings = arm.old.fields.iter().map(binding);
                    let inits = arm.fields.iter().map(|f| init(&err, f));
                    quote! {
                        super::#prev_mod::#old_ident::#ovi { #(#members: #bindings),* } => #ident::#nvi { #(#inits),* }
                    }
                });
                let body = quote! {
                    ::core::result::Result::Ok(match __old {
                        #(#arms,)*
                    })
                };
                (old, body)
            }
        };
        let old_ident = &old.ident;
        Some(quote! {
            #[automatically_derived]
            impl ::upshift::state::Upgrade<super::#prev_mod::#old_ident> for #ident {
                #[allow(unused_variables, unreachable_code)]
                fn upgrade(
                    __old: super::#prev_mod::#old_ident,
                ) -> ::core::result::Result<Self, ::upshift::state::TransformError> {
                    #body
                }
            }
        })
    }
}

/// `field: value` of a new field, from its planned source.
fn init(err: &Err_, plan: &FieldPlan<'_>) -> TokenStream {
    let f = plan.field;
    let member = &f.member;
    let value = match &plan.source {
        Source::Default(Default_::Trait) => {
            quote_spanned!(f.span=> ::core::default::Default::default())
        }
        Source::Default(Default_::Path(path)) => quote_spanned!(f.span=> #path()),
        Source::Convert(o, with) => {
            let (b, ty) = (binding(o), &f.ty);
            let error = err.build(Some(&f.key), quote!(__reason));
            quote_spanned! {f.span=>
                match ::upshift::__private::Outcome::<#ty>::into_outcome(#with(#b)) {
                    ::core::result::Result::Ok(__value) => __value,
                    ::core::result::Result::Err(__reason) => return ::core::result::Result::Err(#error),
                }
            }
        }
        Source::Nested(o) => {
            let b = binding(o);
            quote_spanned!(f.span=> ::upshift::state::Upgrade::upgrade(#b)?)
        }
        Source::Move(o) => {
            let b = binding(o);
            quote!(#b)
        }
        // Reported by the plan; expansion does not run with errors, but a
        // placeholder keeps this total.
        Source::Invalid => quote!(::core::unreachable!()),
    };
    quote!(#member: #value)
}

/// The local that holds an old field's value during a transform.
fn binding(f: &StateField) -> Ident {
    format_ident!("__old_{}", f.key)
}

/// What a failed step reports (a transform's, or a downgrade's).
pub(super) struct Err_ {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) type_name: String,
}

impl Err_ {
    pub(super) fn build(&self, field: Option<&str>, reason: TokenStream) -> TokenStream {
        let (from, to, type_name) = (self.from, self.to, &self.type_name);
        let field = match field {
            Some(f) => quote!(::core::option::Option::Some(#f)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::upshift::state::TransformError {
                from: #from,
                to: #to,
                type_name: #type_name,
                field: #field,
                reason: #reason,
            }
        }
    }
}
