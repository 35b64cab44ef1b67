//! `impl Downgrade<vN::New> for vN-1::Old` (with `rollback`): each type's
//! transform back, read from the same plan as the upgrade and reversed.
//! Reports nothing: the plan checked every `inverse`.

use std::collections::BTreeSet;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::Gen;
use super::upgrade::Err_;
use crate::state::model::{Default_, Shape, StateField};
use crate::state::plan::{FieldPlan, Source, Step, TypePlan};

impl Gen<'_> {
    /// `impl Downgrade<New> for vP::Old`, for a type with a predecessor in
    /// a state declared with `rollback`.
    pub(super) fn downgrade(&self, plan: &TypePlan<'_>) -> Option<TokenStream> {
        if !self.state.rollback {
            return None;
        }
        let t = plan.ty;
        let prev = self.prev?;
        let prev_mod = format_ident!("v{}", prev.number);
        let ident = &t.ident;
        let err = Err_ {
            from: self.v.number,
            to: prev.number,
            type_name: ident.to_string(),
        };
        let (old, body) = match &plan.step {
            Step::New | Step::Invalid => return None,
            Step::Transform { old, .. } => {
                let inverse = t.inverse.as_ref()?;
                let error = err.build(None, quote!(__reason));
                let old_ident = &old.ident;
                let body = quote! {
                    match ::upshift::__private::Outcome::<super::#prev_mod::#old_ident>::into_outcome(#inverse(__new)) {
                        ::core::result::Result::Ok(__old) => ::core::result::Result::Ok(__old),
                        ::core::result::Result::Err(__reason) => ::core::result::Result::Err(#error),
                    }
                };
                (old, body)
            }
            Step::Fields { old, fields } => {
                let Shape::Struct(old_fields) = &old.shape else {
                    return None;
                };
                let Shape::Struct(new_fields) = &t.shape else {
                    return None;
                };
                let old_ident = &old.ident;
                let members = new_fields.iter().map(|f| &f.member);
                let bindings = new_fields.iter().map(binding);
                let drops = dropped(ident, fields);
                let values = old_fields.iter().map(|o| back(&err, o, fields));
                let body = quote! {
                    let #ident { #(#members: #bindings),* } = __new;
                    #(#drops)*
                    ::core::result::Result::Ok(super::#prev_mod::#old_ident::__from_parts(#(#values),*))
                };
                (old, body)
            }
            Step::Variants { old, arms } => {
                let Shape::Enum(new_variants) = &t.shape else {
                    return None;
                };
                let old_ident = &old.ident;
                let mut seen = BTreeSet::new();
                let mut cases: Vec<TokenStream> = arms
                    .iter()
                    .filter(|arm| seen.insert(arm.new.ident.to_string()))
                    .map(|arm| {
                        let (ovi, nvi) = (&arm.old.ident, &arm.new.ident);
                        let members = arm.new.fields.iter().map(|f| &f.member);
                        let bindings = arm.new.fields.iter().map(binding);
                        let drops = dropped(ident, &arm.fields);
                        let old_members = arm.old.fields.iter().map(|f| &f.member);
                        let values = arm.old.fields.iter().map(|o| back(&err, o, &arm.fields));
                        quote! {
                            #ident::#nvi { #(#members: #bindings),* } => {
                                #(#drops)*
                                super::#prev_mod::#old_ident::#ovi { #(#old_members: #values),* }
                            }
                        }
                    })
                    .collect();
                for nv in new_variants
                    .iter()
                    .filter(|v| !seen.contains(&v.ident.to_string()))
                {
                    let nvi = &nv.ident;
                    let reason = format!(
                        "variant `{nvi}` is new in v{}, and v{} has nothing to hold it",
                        self.v.number, prev.number
                    );
                    let error = err.build(
                        Some(&nvi.to_string()),
                        quote!(::std::string::String::from(#reason)),
                    );
                    cases.push(quote! {
                        #ident::#nvi { .. } => return ::core::result::Result::Err(#error)
                    });
                }
                let body = quote! {
                    ::core::result::Result::Ok(match __new {
                        #(#cases,)*
                    })
                };
                (old, body)
            }
        };
        let old_ident = &old.ident;
        Some(quote! {
            #[automatically_derived]
            impl ::upshift::state::Downgrade<#ident> for super::#prev_mod::#old_ident {
                #[allow(unused_variables, unreachable_code, clippy::needless_question_mark)]
                fn downgrade(
                    __new: #ident,
                    __dropped: &mut ::upshift::state::Dropped,
                ) -> ::core::result::Result<Self, ::upshift::state::TransformError> {
                    #body
                }
            }
        })
    }

    /// `impl Reversible for Root` (with `rollback`, after the first version).
    pub(super) fn reversible(&self) -> Option<TokenStream> {
        if !self.state.rollback {
            return None;
        }
        let prev = self.prev?;
        let prev_mod = format_ident!("v{}", prev.number);
        let (root, prev_root) = (&self.v.types[0].ident, &prev.types[0].ident);
        Some(quote! {
            #[automatically_derived]
            impl ::upshift::state::Reversible for #root {
                type Previous = super::#prev_mod::#prev_root;
                fn downgrade(
                    self,
                    dropped: &mut ::upshift::state::Dropped,
                ) -> ::core::result::Result<Self::Previous, ::upshift::state::TransformError> {
                    <Self::Previous as ::upshift::state::Downgrade<Self>>::downgrade(self, dropped)
                }
            }
        })
    }
}

/// The local that holds a new field's value during a downgrade.
fn binding(f: &StateField) -> Ident {
    format_ident!("__new_{}", f.key)
}

/// Counts each value of a field the next version added that differs from
/// the field's default: the rollback drops it.
fn dropped<'a>(
    owner: &'a Ident,
    fields: &'a [FieldPlan<'a>],
) -> impl Iterator<Item = TokenStream> + 'a {
    fields.iter().filter_map(move |f| {
        let Source::Default(default) = &f.source else {
            return None;
        };
        let (b, ty) = (binding(f.field), &f.field.ty);
        let place = format!("{owner}.{}", f.field.key);
        let default = match default {
            Default_::Trait => quote!(<#ty as ::core::default::Default>::default()),
            Default_::Path(path) => quote!(#path()),
        };
        Some(quote_spanned! {f.field.span=>
            {
                #[allow(unused_imports)]
                use ::upshift::__private::{ProbeAny as _, ProbeEq as _};
                if (&&::upshift::__private::Probe::<#ty>(&#b)).differs(|| #default) {
                    __dropped.record(#place);
                }
            }
        })
    })
}

/// The value of old field `o`, from the new field that came from it.
fn back(err: &Err_, o: &StateField, fields: &[FieldPlan<'_>]) -> TokenStream {
    let came = fields.iter().find_map(|f| match &f.source {
        Source::Move(from) | Source::Nested(from) | Source::Convert(from, _)
            if from.key == o.key =>
        {
            Some((f.field, &f.source))
        }
        _ => None,
    });
    match came {
        Some((f, Source::Move(_))) => {
            let b = binding(f);
            quote!(#b)
        }
        Some((f, Source::Nested(_))) => {
            let b = binding(f);
            quote_spanned!(f.span=> ::upshift::state::Downgrade::downgrade(#b, __dropped)?)
        }
        Some((f, Source::Convert(..))) => {
            let b = binding(f);
            let ty = &o.ty;
            let error = err.build(Some(&f.key), quote!(__reason));
            let Some(inverse) = &f.inverse else {
                return quote!(::core::unreachable!());
            };
            quote_spanned! {f.span=>
                match ::upshift::__private::Outcome::<#ty>::into_outcome(#inverse(#b)) {
                    ::core::result::Result::Ok(__value) => __value,
                    ::core::result::Result::Err(__reason) => return ::core::result::Result::Err(#error),
                }
            }
        }
        // Removed by the next version: back with its type's default.
        _ => {
            let ty = &o.ty;
            quote_spanned!(o.span=> ::upshift::__private::restored::<#ty>())
        }
    }
}
