//! `#[derive(upshift::Schema)]`: the shape of a user type that appears in
//! messages or state, locked like an interface version so that a change deep
//! inside a nested type of a released version breaks the build.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr};

use crate::canonical::{shape_lines, type_text};
use crate::ctxt::Ctxt;
use crate::encoding::{self, Data};
use crate::lock;

/// Expands `#[derive(upshift::Schema)]`.
pub fn schema(input: TokenStream, file: Option<PathBuf>) -> TokenStream {
    let cx = Ctxt::default();
    let item: DeriveInput = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    let mut lock_option: Option<LitStr> = None;
    for attr in item.attrs.iter().filter(|a| a.path().is_ident("upshift")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("lock") {
                lock_option = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("encoded_as") {
                // Read by `encoding`: what the type's own serde code writes.
                let _: syn::Type = meta.value()?.parse()?;
                Ok(())
            } else {
                Err(meta.error("unknown option of #[derive(upshift::Schema)]; the options are `lock = \"...\"` and `encoded_as = Type`"))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    let (lines, field_types, data): (Vec<String>, Vec<&syn::Type>, Option<Data<'_>>) =
        match &item.data {
            syn::Data::Struct(s) => (
                shape_lines(Some(&s.fields), []),
                s.fields.iter().map(|f| &f.ty).collect(),
                Some(Data::Struct(&s.fields)),
            ),
            syn::Data::Enum(e) => (
                shape_lines(None, &e.variants),
                e.variants
                    .iter()
                    .flat_map(|v| v.fields.iter().map(|f| &f.ty))
                    .collect(),
                Some(Data::Enum(&e.variants)),
            ),
            syn::Data::Union(_) => {
                cx.error_spanned_by(
                    &item.ident,
                    "unions have no wire format; use a struct or an enum",
                );
                (Vec::new(), Vec::new(), None)
            }
        };
    for field in field_attrs(&item.data) {
        for attr in field.iter().filter(|a| a.path().is_ident("upshift")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("encoded_as") {
                    let _: syn::Type = meta.value()?.parse()?;
                    Ok(())
                } else {
                    Err(meta.error("unknown option of a field of #[derive(upshift::Schema)]; the only option is `encoded_as = Type`"))
                }
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
    }
    if let Some(data) = data {
        for e in encoding::errors(&item.attrs, data) {
            cx.syn_error(e);
        }
    }
    let encoding = data.map_or_else(
        || quote!(&::upshift::schema::Encoding::Invalid),
        |data| encoding::tokens(&item.ident, &item.attrs, data),
    );
    let path = lock::path(lock_option.as_ref().map(LitStr::value).as_deref(), file);
    let name = &item.ident;
    let section = lock::Section {
        key: format!("type {name}"),
        lines: lines.clone(),
        span: name.span(),
        what: match path.as_deref().map(|p| lock::users(p, &name.to_string())) {
            Some(users) if !users.is_empty() => format!(
                "type `{name}` is used by released {} {}",
                if users.len() == 1 {
                    "version"
                } else {
                    "versions"
                },
                users.join(", ")
            ),
            _ => format!("type `{name}` is used by released versions"),
        },
        // Types are keyed by name in the lock: a second type of the same name
        // looks like a change of the first, so the message says what to do then.
        advice: "leave it as it was and give the new shape a new type in a new version".into(),
        encodings: vec![lock::Encoded {
            label: name.to_string(),
            encoding: {
                // A generic type is recorded with its parameters as `$0`, `$1`.
                let params = item
                    .generics
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| match p {
                        syn::GenericParam::Type(_) => quote!(::upshift::schema::Param<#i>),
                        syn::GenericParam::Lifetime(l) => quote!(#l),
                        syn::GenericParam::Const(c) => {
                            let ident = &c.ident;
                            quote!(#ident)
                        }
                    });
                let args = (!item.generics.params.is_empty()).then(|| quote!(<#(#params),*>));
                quote!(<#name #args as ::upshift::schema::Schema>::ENCODING)
            },
            span: name.span(),
            ty: None,
        }],
    };
    let lock = lock::check_sections(&cx, &[section], path);
    let (lock_tracking, lock_errors) = (lock.tracking, lock.errors);
    let ident = &item.ident;
    if let Err(e) = cx.check() {
        // A stub beside the error, so that uses of the type (in versioned
        // interfaces and states) do not add "has no upshift schema" errors.
        let errors = e.into_compile_error();
        let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
        return quote! {
            #[automatically_derived]
            impl #impl_generics ::upshift::schema::Schema for #ident #ty_generics #where_clause {
                const ENCODING: &'static ::upshift::schema::Encoding = &::upshift::schema::Encoding::Invalid;
            }
            #errors
            #lock_errors
        };
    }
    // A field's type is locked through its own schema: require one. A
    // generic type's shape is written with its parameters (`items: Vec<T>`),
    // so it is locked once for every instance, and each instance needs
    // schemas for its arguments: bounds on the impl instead of a const check.
    let (requires, generics) = if item.generics.params.is_empty() {
        let named: Vec<syn::Type> = field_types
            .iter()
            .map(|ty| encoding::self_named(&item.ident, ty))
            .collect();
        (require_schemas(&named), item.generics.clone())
    } else {
        let mut generics = item.generics.clone();
        for param in generics.type_params_mut() {
            param
                .bounds
                .push(syn::parse_quote!(::upshift::schema::Schema));
        }
        let mut seen = std::collections::BTreeSet::new();
        let where_clause = generics.make_where_clause();
        for ty in field_types {
            if seen.insert(crate::canonical::type_text(ty)) {
                let span = syn::spanned::Spanned::span(ty);
                where_clause
                    .predicates
                    .push(syn::parse_quote_spanned!(span=> #ty: ::upshift::schema::Schema));
            }
        }
        (TokenStream::new(), generics)
    };
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::upshift::schema::Schema for #ident #ty_generics #where_clause {
            const ENCODING: &'static ::upshift::schema::Encoding = #encoding;
        }
        #requires
        #lock_tracking
        #lock_errors
    }
}

/// `const _: () = { require::<T>(); .. };` for each distinct field type:
/// every type inside a versioned definition must have a schema, and the
/// error points at the field's type.
pub fn require_schemas<'a>(
    types: impl IntoIterator<Item = &'a syn::Type>,
) -> proc_macro2::TokenStream {
    let mut seen = std::collections::BTreeSet::new();
    let requires = types
        .into_iter()
        .filter(|ty| seen.insert(type_text(ty)))
        .map(|ty| {
            let span = syn::spanned::Spanned::span(ty);
            quote::quote_spanned!(span=> let _ = ::upshift::schema::require::<#ty>();)
        });
    quote::quote!(const _: () = { #(#requires)* };)
}

/// The attributes of every field and variant.
fn field_attrs(data: &syn::Data) -> Vec<&[syn::Attribute]> {
    match data {
        syn::Data::Struct(s) => s.fields.iter().map(|f| f.attrs.as_slice()).collect(),
        syn::Data::Enum(e) => e
            .variants
            .iter()
            .flat_map(|v| {
                std::iter::once(v.attrs.as_slice())
                    .chain(v.fields.iter().map(|f| f.attrs.as_slice()))
            })
            .collect(),
        syn::Data::Union(_) => Vec::new(),
    }
}
