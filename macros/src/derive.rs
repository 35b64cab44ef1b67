//! `#[derive(upshift::Schema)]`: the shape of a user type that appears in
//! messages or state, locked like an interface version so that a change deep
//! inside a nested type of a released version breaks the build.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::ctxt::Ctxt;
use crate::lock;
use crate::model::type_text;

fn fields_text(fields: &Fields) -> String {
    let parts: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ident {
            Some(name) => format!("{name}: {}", type_text(&f.ty)),
            None => format!("{i}: {}", type_text(&f.ty)),
        })
        .collect();
    match fields {
        Fields::Named(_) => format!(" {{ {} }}", parts.join(", ")),
        Fields::Unnamed(_) => format!("({})", parts.join(", ")),
        Fields::Unit => String::new(),
    }
}

/// Expands `#[derive(upshift::Schema)]`.
pub fn schema(input: TokenStream, file: Option<PathBuf>) -> TokenStream {
    let cx = Ctxt::default();
    let item: DeriveInput = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => return e.into_compile_error(),
    };
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "#[derive(upshift::Schema)] does not support generic types yet; lock a concrete type instead",
        );
    }
    let mut lock_option: Option<LitStr> = None;
    for attr in item.attrs.iter().filter(|a| a.path().is_ident("upshift")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("lock") {
                lock_option = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown option of #[derive(upshift::Schema)]; the only option is `lock = \"...\"`"))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    let lines: Vec<String> = match &item.data {
        Data::Struct(s) => s
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = f
                    .ident
                    .as_ref()
                    .map_or_else(|| i.to_string(), ToString::to_string);
                format!("field {name}: {}", type_text(&f.ty))
            })
            .collect(),
        Data::Enum(e) => e
            .variants
            .iter()
            .map(|v| format!("variant {}{}", v.ident, fields_text(&v.fields)))
            .collect(),
        Data::Union(_) => {
            cx.error_spanned_by(
                &item.ident,
                "unions have no wire format; use a struct or an enum",
            );
            Vec::new()
        }
    };
    let path = lock::path(lock_option.as_ref().map(LitStr::value).as_deref(), file);
    let name = &item.ident;
    let section = lock::Section {
        key: format!("type {name}"),
        lines: lines.clone(),
        span: name.span(),
        what: format!("type `{name}` is used by released versions"),
        advice: "leave it as it was and give the new shape a new type in a new version".into(),
    };
    let lock_tracking = lock::check_sections(&cx, &[section], path);
    if let Err(e) = cx.check() {
        return e.into_compile_error();
    }
    let ident = &item.ident;
    quote! {
        #[automatically_derived]
        impl ::upshift::schema::Schema for #ident {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[#(#lines),*];
        }
        #lock_tracking
    }
}
