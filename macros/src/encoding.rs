//! `Schema::ENCODING` of a struct or enum: what postcard writes for it, from
//! its fields' types and its serde attributes. The derive and the state
//! macro both emit it from here.
//!
//! Serde attributes that change the encoding are modelled (`skip` removes a
//! field) or refused; the rule of each is in [`SERDE_RULES`]. A field the
//! user encodes their own way (`with`, `serialize_with`) states what it
//! writes with `#[upshift(encoded_as = Type)]`, so the lock records the truth.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, Fields, Type};

/// Where a serde attribute stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum At {
    Container,
    Variant,
    Field,
}

/// What a serde attribute does to postcard's encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Nothing: names and defaults are not written by postcard.
    Harmless,
    /// The field is not written or read: it leaves the encoding.
    Skip,
    /// Half a skip (`skip_serializing`, `skip_deserializing`): refused
    /// alone, a [`Rule::Skip`] together with the other half.
    HalfSkip,
    /// Written one way, read another: refused, with why.
    Refused(&'static str),
    /// The user's own code writes it: allowed with `encoded_as`.
    Custom,
}

/// Every serde attribute upshift knows, by place. An attribute not listed is
/// refused: upshift cannot tell what it writes.
const SERDE_RULES: &[(&str, At, Rule)] = &[
    ("rename", At::Container, Rule::Harmless),
    ("rename_all", At::Container, Rule::Harmless),
    ("rename_all_fields", At::Container, Rule::Harmless),
    ("deny_unknown_fields", At::Container, Rule::Harmless),
    ("bound", At::Container, Rule::Harmless),
    ("crate", At::Container, Rule::Harmless),
    ("default", At::Container, Rule::Harmless),
    ("expecting", At::Container, Rule::Harmless),
    // A struct of one field is written as that field either way.
    ("transparent", At::Container, Rule::Harmless),
    ("tag", At::Container, Rule::Refused(TAGGED)),
    ("content", At::Container, Rule::Refused(TAGGED)),
    ("untagged", At::Container, Rule::Refused(TAGGED)),
    ("from", At::Container, Rule::Custom),
    ("try_from", At::Container, Rule::Custom),
    ("into", At::Container, Rule::Custom),
    (
        "remote",
        At::Container,
        Rule::Refused(
            "a remote definition describes another type; derive the schema on the type that is sent",
        ),
    ),
    ("rename", At::Variant, Rule::Harmless),
    ("alias", At::Variant, Rule::Harmless),
    ("rename_all", At::Variant, Rule::Harmless),
    ("bound", At::Variant, Rule::Harmless),
    ("borrow", At::Variant, Rule::Harmless),
    ("skip", At::Variant, Rule::Refused(SKIPPED_VARIANT)),
    (
        "skip_serializing",
        At::Variant,
        Rule::Refused(SKIPPED_VARIANT),
    ),
    (
        "skip_deserializing",
        At::Variant,
        Rule::Refused(SKIPPED_VARIANT),
    ),
    ("other", At::Variant, Rule::Refused(TAGGED)),
    ("untagged", At::Variant, Rule::Refused(TAGGED)),
    ("with", At::Variant, Rule::Refused(CUSTOM_VARIANT)),
    ("serialize_with", At::Variant, Rule::Refused(CUSTOM_VARIANT)),
    (
        "deserialize_with",
        At::Variant,
        Rule::Refused(CUSTOM_VARIANT),
    ),
    ("rename", At::Field, Rule::Harmless),
    ("alias", At::Field, Rule::Harmless),
    ("default", At::Field, Rule::Harmless),
    ("bound", At::Field, Rule::Harmless),
    ("borrow", At::Field, Rule::Harmless),
    ("skip", At::Field, Rule::Skip),
    ("skip_serializing", At::Field, Rule::HalfSkip),
    ("skip_deserializing", At::Field, Rule::HalfSkip),
    (
        "skip_serializing_if",
        At::Field,
        Rule::Refused(
            "postcard writes no field names, so a field left out when empty shifts every field after it and the reader decodes garbage; remove it (an `Option` field costs one byte)",
        ),
    ),
    (
        "flatten",
        At::Field,
        Rule::Refused(
            "postcard cannot decode flattened fields (they need a self-describing format); write the inner struct as a field",
        ),
    ),
    ("with", At::Field, Rule::Custom),
    ("serialize_with", At::Field, Rule::Custom),
    ("deserialize_with", At::Field, Rule::Custom),
    (
        "getter",
        At::Field,
        Rule::Refused("`getter` belongs to remote definitions, which upshift does not lock"),
    ),
];

const TAGGED: &str = "postcard is not self-describing: it cannot decode internally or adjacently tagged, untagged or `other` enums; remove it (the default, externally tagged, is what upshift locks)";
const ONE_WAY: &str = "a field written but not read (or read but not written) shifts every field after it; use `skip` for a field that is never sent, or send it";
const SKIPPED_VARIANT: &str = "a variant that is written but not read (or never written) still takes its index; remove the variant in a new version instead";
const CUSTOM_VARIANT: &str = "a variant with its own serde code cannot be locked; give its fields a type that implements `upshift::schema::Schema`";

/// How a field is encoded.
pub enum FieldEncoding {
    /// As its type, or as the type `encoded_as` names.
    As(Box<Type>),
    /// Not at all (`#[serde(skip)]`).
    Skipped,
}

/// Reads the serde and `#[upshift(encoded_as = T)]` attributes of one place;
/// every refusal is an error with the attribute's span. `ty` is the field's
/// type (or `None` for containers and variants).
pub fn attributes(
    attrs: &[Attribute],
    at: At,
    ty: Option<&Type>,
) -> (FieldEncoding, Vec<syn::Error>) {
    let mut errors = Vec::new();
    let mut custom: Option<syn::Path> = None;
    let mut skip = false;
    // Each half of a skip seen, with the attribute that holds it.
    let mut halves: Vec<(String, &Attribute)> = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = a.parse_nested_meta(|meta| {
            let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            // Consume the value, whatever it is: `= lit`, or a `( .. )` list.
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        let _: syn::Expr = inner.value()?.parse()?;
                    }
                    Ok(())
                })?;
            }
            let rule = SERDE_RULES
                .iter()
                .find(|(n, place, _)| *n == name && *place == at)
                .map(|(_, _, rule)| *rule);
            match rule {
                Some(Rule::Harmless) => {}
                Some(Rule::Skip) => skip = true,
                Some(Rule::HalfSkip) => halves.push((name.clone(), a)),
                Some(Rule::Refused(why)) => errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!("`#[serde({name})]` changes what postcard writes in a way upshift cannot lock: {why}"),
                )),
                Some(Rule::Custom) => custom = Some(meta.path.clone()),
                None => errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "upshift does not know what `#[serde({name})]` does to the encoding of {}, so it cannot lock it; remove it, or describe the type with a hand-written `impl upshift::schema::Schema`",
                        match at {
                            At::Container => "a type",
                            At::Variant => "a variant",
                            At::Field => "a field",
                        }
                    ),
                )),
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let has = |half: &str| halves.iter().any(|(h, _)| h == half);
    match halves.first() {
        None => {}
        Some(_) if has("skip_serializing") && has("skip_deserializing") => skip = true,
        Some((which, a)) => errors.push(syn::Error::new_spanned(
            a,
            format!("`#[serde({which})]` changes what postcard writes in a way upshift cannot lock: {ONE_WAY}"),
        )),
    }
    let mut encoded_as: Option<Type> = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("upshift")) {
        // Other `upshift` options belong to the caller; only `encoded_as` is read here.
        let _ = a.parse_nested_meta(|meta| {
            if meta.path.is_ident("encoded_as") {
                encoded_as = Some(meta.value()?.parse()?);
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
    }
    if let (Some(path), None) = (&custom, &encoded_as) {
        let name = path.to_token_stream().to_string();
        errors.push(syn::Error::new_spanned(
            path,
            format!(
                "`#[serde({name})]` writes {} with code upshift cannot see; say what it writes with #[upshift(encoded_as = Type)] \
                 (a type whose serde encoding is the same, such as `String` for a hex string), so the lock records it",
                if at == At::Container { "this type" } else { "this field" }
            ),
        ));
    }
    let encoding = match (skip, encoded_as, ty) {
        (true, _, _) => FieldEncoding::Skipped,
        (false, Some(t), _) => FieldEncoding::As(Box::new(t)),
        (false, None, Some(t)) => FieldEncoding::As(Box::new(t.clone())),
        (false, None, None) => FieldEncoding::Skipped,
    };
    (encoding, errors)
}

/// Every serde error of a type: on the container, its variants and fields.
pub fn errors(attrs: &[Attribute], data: Data<'_>) -> Vec<syn::Error> {
    let mut out = attributes(attrs, At::Container, None).1;
    match data {
        Data::Struct(fields) => out.extend(field_errors(fields)),
        Data::Enum(variants) => {
            for v in variants {
                out.extend(attributes(&v.attrs, At::Variant, None).1);
                out.extend(field_errors(&v.fields));
            }
        }
    }
    out
}

fn field_errors(fields: &Fields) -> Vec<syn::Error> {
    fields
        .iter()
        .flat_map(|f| attributes(&f.attrs, At::Field, Some(&f.ty)).1)
        .collect()
}

/// A struct's fields or an enum's variants.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    Struct(&'a Fields),
    Enum(&'a syn::punctuated::Punctuated<syn::Variant, syn::Token![,]>),
}

/// `&::upshift::schema::Encoding::…` for a type named `name` with `data`,
/// or for what its container-level `encoded_as` names. Fields that name the
/// type itself (`Self`, `name`, `name<..>`) encode as `Recurse`.
pub fn tokens(name: &syn::Ident, attrs: &[Attribute], data: Data<'_>) -> TokenStream {
    if let (FieldEncoding::As(ty), _) = attributes(attrs, At::Container, None) {
        return quote!(<#ty as ::upshift::schema::Schema>::ENCODING);
    }
    match data {
        Data::Struct(fields) => {
            let fields = fields_tokens(name, fields);
            quote!(&::upshift::schema::Encoding::Struct(&[#fields]))
        }
        Data::Enum(variants) => {
            let variants = variants.iter().map(|v| {
                let vname = v.ident.to_string();
                let fields = fields_tokens(name, &v.fields);
                quote!(::upshift::schema::Variant { name: #vname, fields: &[#fields] })
            });
            quote!(&::upshift::schema::Encoding::Enum(&[#(#variants),*]))
        }
    }
}

fn fields_tokens(name: &syn::Ident, fields: &Fields) -> TokenStream {
    let fields = fields.iter().enumerate().filter_map(|(i, f)| {
        let FieldEncoding::As(ty) = attributes(&f.attrs, At::Field, Some(&f.ty)).0 else {
            return None;
        };
        let ty = recurse(name, &ty);
        let fname = f
            .ident
            .as_ref()
            .map_or_else(|| i.to_string(), ToString::to_string);
        Some(quote!(::upshift::schema::Field {
            name: #fname,
            encoding: <#ty as ::upshift::schema::Schema>::ENCODING,
        }))
    });
    quote!(#(#fields),*)
}

/// `ty` with every mention of the type itself replaced by `Recurse`: a
/// recursive type's encoding would otherwise be infinite (and rustc's
/// evaluation of it a cycle).
fn recurse(name: &syn::Ident, ty: &Type) -> Type {
    let mut ty = ty.clone();
    replace_self(
        name,
        &mut ty,
        &syn::parse_quote!(::upshift::schema::Recurse),
    );
    ty
}

/// `ty` with `Self` spelled as the type's name, for items outside its impl.
pub fn self_named(name: &syn::Ident, ty: &Type) -> Type {
    let mut ty = ty.clone();
    replace_self(
        &syn::Ident::new("Self", name.span()),
        &mut ty,
        &syn::parse_quote!(#name),
    );
    ty
}

/// Replaces each mention of `name` or `Self` in `ty` by `with`.
fn replace_self(name: &syn::Ident, ty: &mut Type, with: &Type) {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            if p.path.segments.len() == 1 {
                let ident = &p.path.segments[0].ident;
                if ident == "Self" || ident == name {
                    *ty = with.clone();
                    return;
                }
            }
            for seg in &mut p.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &mut seg.arguments {
                    for arg in &mut args.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            replace_self(name, t, with);
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter_mut().for_each(|e| replace_self(name, e, with)),
        Type::Array(a) => replace_self(name, &mut a.elem, with),
        Type::Slice(s) => replace_self(name, &mut s.elem, with),
        Type::Paren(p) => replace_self(name, &mut p.elem, with),
        Type::Group(g) => replace_self(name, &mut g.elem, with),
        Type::Reference(r) => replace_self(name, &mut r.elem, with),
        _ => {}
    }
}
