//! Attributes shared by the macros: their `name = "..."` argument,
//! `#[version(N)]`, and where upshift attributes do not belong.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, LitInt, LitStr};

use crate::ctxt::Ctxt;

/// Parses `key = "..."` arguments, each allowed once; anything else is a
/// spanned error listing the options.
pub fn string_args(
    cx: &Ctxt,
    args: TokenStream,
    macro_name: &str,
    allowed: &[(&str, &str)],
) -> std::collections::BTreeMap<String, LitStr> {
    args_with_flags(cx, args, macro_name, allowed, &[]).0
}

/// [`string_args`] that also accepts the bare words in `flags` (each with
/// what it does); returns the flags given, with their spans.
pub fn args_with_flags(
    cx: &Ctxt,
    args: TokenStream,
    macro_name: &str,
    allowed: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> (
    std::collections::BTreeMap<String, LitStr>,
    std::collections::BTreeMap<String, proc_macro2::Span>,
) {
    let mut out = std::collections::BTreeMap::new();
    let mut given = std::collections::BTreeMap::new();
    if args.is_empty() {
        return (out, given);
    }
    let parser = syn::meta::parser(|meta| {
        let key = path_text(&meta.path);
        if allowed.iter().any(|(k, _)| *k == key) {
            let lit: LitStr = meta.value()?.parse()?;
            if out.insert(key.clone(), lit).is_some() {
                cx.error_spanned_by(&meta.path, format!("duplicate `{key}` option"));
            }
            Ok(())
        } else if flags.iter().any(|(k, _)| *k == key) {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error(format!("`{key}` takes no value: write just `{key}`")));
            }
            if given
                .insert(key.clone(), syn::spanned::Spanned::span(&meta.path))
                .is_some()
            {
                cx.error_spanned_by(&meta.path, format!("duplicate `{key}` option"));
            }
            Ok(())
        } else {
            let options: Vec<String> = allowed
                .iter()
                .map(|(k, what)| format!("`{k} = \"...\"` ({what})"))
                .chain(flags.iter().map(|(k, what)| format!("`{k}` ({what})")))
                .collect();
            Err(meta.error(format!(
                "unknown option `{key}` of #[upshift::{macro_name}]; the options are {}",
                options.join(", ")
            )))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
    }
    (out, given)
}

/// Arguments of `#[upshift::interface(...)]`.
#[derive(Default)]
pub struct InterfaceArgs {
    /// `name = "..."`: the service name on the wire (default: the trait name).
    pub name: Option<LitStr>,
    /// `lock = "..."`: the lock file, relative to the source file (default:
    /// `upshift.lock` beside the crate's `Cargo.toml`).
    pub lock: Option<LitStr>,
}

impl InterfaceArgs {
    /// Parses the attribute's arguments; problems are recorded in `cx`.
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let allowed = [
            ("name", "the service name on the wire"),
            (
                "lock",
                "the lock file of released versions, relative to this source file",
            ),
        ];
        let mut map = string_args(cx, args, "interface", &allowed);
        let name = map.remove("name");
        if let Some(n) = &name
            && !(1..=255).contains(&n.value().len())
        {
            cx.error_spanned_by(n, "the service name must be 1 to 255 bytes long");
        }
        InterfaceArgs {
            name,
            lock: map.remove("lock"),
        }
    }
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<_> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// Whether `attr` is `#[version(...)]`.
pub fn is_version(attr: &Attribute) -> bool {
    attr.path().is_ident("version")
}

/// Whether `attr` is `#[upshift(...)]`.
pub fn is_upshift(attr: &Attribute) -> bool {
    attr.path().is_ident("upshift")
}

/// The version number of a trait, from its `#[version(N)]`, with the span of
/// the number. Records an error and returns `None` when the attribute is
/// missing or malformed.
pub fn version(cx: &Ctxt, attrs: &[Attribute], item: Span) -> Option<(u32, Span)> {
    let mut found: Option<(u32, Span)> = None;
    let mut seen = false;
    for attr in attrs.iter().filter(|a| is_version(a)) {
        if seen {
            cx.error_spanned_by(
                attr,
                "duplicate #[version]; each trait declares exactly one version",
            );
            continue;
        }
        seen = true;
        match attr.parse_args::<LitInt>() {
            Ok(lit) => match lit.base10_parse::<u32>() {
                Ok(0) => cx.error_spanned_by(
                    &lit,
                    "versions start at 1; write #[version(1)] for the first one",
                ),
                Ok(n) if lit.suffix().is_empty() => found = Some((n, lit.span())),
                Ok(_) => cx.error_spanned_by(
                    &lit,
                    "write the version without a suffix, as in #[version(2)]",
                ),
                Err(_) => cx.error_spanned_by(
                    &lit,
                    "the version must be a whole number from 1 to 4294967295",
                ),
            },
            Err(_) => cx.error_spanned_by(
                attr,
                "expected #[version(N)] with a whole number N, as in #[version(2)]",
            ),
        }
    }
    if !seen {
        cx.syn_error(syn::Error::new(
            item,
            "each trait in an #[upshift::interface] module declares one version of the interface; \
             add #[version(N)] above it",
        ));
    }
    found
}

/// Records an error for every upshift attribute in a place where it has no meaning.
pub fn reject_misplaced(cx: &Ctxt, attrs: &[Attribute], place: &str) {
    for attr in attrs {
        if is_version(attr) {
            cx.error_spanned_by(
                attr,
                format!("#[version] does not belong on {place}; put it on a trait of the module"),
            );
        } else if is_upshift(attr) {
            cx.error_spanned_by(
                attr,
                format!("#[upshift(...)] has no options for {place} in an interface"),
            );
        }
    }
}

/// The `#[doc]` attributes of an item.
pub fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// The text of the `#[doc = "..."]` attributes, one line each.
pub fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && nv.path.is_ident("doc")
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            let line = s.value();
            lines.push(line.strip_prefix(' ').unwrap_or(&line).to_string());
        }
    }
    lines.join("\n")
}
