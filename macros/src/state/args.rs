//! The attributes of `#[upshift::state]`: the macro's arguments and the
//! `#[upshift(...)]` options of types, fields and variants. Knows syn; reports
//! malformed attributes; decides nothing about transforms.

use proc_macro2::TokenStream;
use syn::{Attribute, LitStr, Path};

use super::model::Default_;
use crate::attr;
use crate::ctxt::Ctxt;

/// Arguments of `#[upshift::state(...)]`.
#[derive(Default)]
pub struct StateArgs {
    /// `name = "..."`: the name in snapshot headers and file names.
    pub name: Option<LitStr>,
    /// `lock = "..."`: the lock file, relative to the source file.
    pub lock: Option<LitStr>,
    /// `rollback`: every version gets its downgrade to the one before.
    pub rollback: bool,
}

impl StateArgs {
    /// Parses the attribute's arguments; problems are recorded in `cx`.
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let allowed = [
            ("name", "the name in snapshot files"),
            (
                "lock",
                "the lock file of released versions, relative to this source file",
            ),
        ];
        let flags = [(
            "rollback",
            "every version can be rolled back to the one before, with its state",
        )];
        let (mut map, given) = attr::args_with_flags(cx, args, "state", &allowed, &flags);
        let name = map.remove("name").filter(|lit| {
            let v = lit.value();
            let valid = (1..=255).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !valid {
                cx.error_spanned_by(lit, "the state name must be 1 to 255 letters, digits, '-', '_' or '.': it names the snapshot files");
            }
            valid
        });
        StateArgs {
            name,
            lock: map.remove("lock"),
            rollback: given.contains_key("rollback"),
        }
    }
}

/// The `#[upshift(...)]` options of one place, parsed.
#[derive(Default)]
pub struct Options {
    pub from: Option<LitStr>,
    pub transform: Option<Path>,
    pub default: Option<Default_>,
    pub with: Option<Path>,
    pub inverse: Option<Path>,
}

/// Where an `#[upshift(...)]` attribute stands, which decides its options.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Type,
    Field,
    Variant,
}

impl Place {
    fn valid(self) -> &'static str {
        match self {
            Place::Type => {
                "`from = \"OldName\"`, `transform = path`, `inverse = path` and `encoded_as = Type`"
            }
            Place::Field => {
                "`default`, `default = path`, `from = \"old_name\"`, `with = path`, `inverse = path` and `encoded_as = Type`"
            }
            Place::Variant => "`from = \"OldName\"`",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Place::Type => "a state type",
            Place::Field => "a field",
            Place::Variant => "a variant",
        }
    }
}

pub fn options(cx: &Ctxt, attrs: &[Attribute], place: Place) -> Options {
    let mut out = Options::default();
    for a in attrs.iter().filter(|a| attr::is_upshift(a)) {
        let result = a.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match (key.as_str(), place) {
                ("from", _) => {
                    let lit: LitStr = meta.value()?.parse()?;
                    if out.from.replace(lit).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `from` option");
                    }
                }
                ("transform", Place::Type) => {
                    let path: Path = meta.value()?.parse()?;
                    if out.transform.replace(path).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `transform` option");
                    }
                }
                // Read by `encoding`: what a field's (or type's) own serde code writes.
                ("encoded_as", Place::Field | Place::Type) => {
                    let _: syn::Type = meta.value()?.parse()?;
                }
                ("with", Place::Field) => {
                    let path: Path = meta.value()?.parse()?;
                    if out.with.replace(path).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `with` option");
                    }
                }
                ("inverse", Place::Field | Place::Type) => {
                    let path: Path = meta.value()?.parse()?;
                    if out.inverse.replace(path).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `inverse` option");
                    }
                }
                ("default", Place::Field) => {
                    let value = if meta.input.peek(syn::Token![=]) {
                        Default_::Path(meta.value()?.parse()?)
                    } else {
                        Default_::Trait
                    };
                    if out.default.replace(value).is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `default` option");
                    }
                }
                _ => {
                    return Err(meta.error(format!(
                        "unknown option `{key}` for {}; the options here are {}",
                        place.what(),
                        place.valid()
                    )));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    if let (Some(_), Some(with)) = (&out.default, &out.with) {
        cx.error_spanned_by(
            with,
            "a field takes either `default` (it is new) or `with` (it converts an old value), not both",
        );
    }
    out
}

pub fn strip(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !attr::is_upshift(a) && !attr::is_version(a));
}

pub fn reject_serde_derive(cx: &Ctxt, attrs: &[Attribute]) {
    for a in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = a.parse_nested_meta(|meta| {
            if let Some(last) = meta.path.segments.last()
                && (last.ident == "Serialize" || last.ident == "Deserialize")
            {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "#[upshift::state] derives `{}` for every state type; remove it from #[derive]",
                        last.ident
                    ),
                );
            }
            Ok(())
        });
    }
}
