//! The state model: versions of a node's persistent state, each a set of
//! types whose first is the root, with the attributes that say how each
//! field or variant comes from the previous version.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Attribute, Fields, Ident, Item, ItemMod, LitStr, Path, Type, Visibility};

use super::args::{Place, StateArgs, options, reject_serde_derive, strip};
use crate::attr;
use crate::canonical::type_text;
use crate::ctxt::Ctxt;

/// A state: every declared version.
pub struct State {
    /// Attributes of the module.
    pub attrs: Vec<Attribute>,
    /// Visibility of the module.
    pub vis: Visibility,
    /// The module's name.
    pub module: Ident,
    /// Items that are not versioned types, passed through.
    pub items: Vec<Item>,
    /// Name in snapshot headers.
    pub name: String,
    /// Versions, ascending.
    pub versions: Vec<StateVersion>,
    /// `rollback`: each version has a downgrade to the one before.
    pub rollback: bool,
}

/// One version: its types, the root first.
pub struct StateVersion {
    /// The version number.
    pub number: u32,
    /// Types of this version in declaration order; the first is the root.
    pub types: Vec<StateType>,
}

/// How a value of one version's type comes from the previous version.
pub struct StateType {
    /// The type's name.
    pub ident: Ident,
    /// The item as emitted: the user's struct or enum without upshift attributes.
    pub item: Item,
    /// The item as written, whose attributes decide its encoding.
    pub written: Item,
    /// `#[upshift(from = "Old")]`: the previous version's name of this type.
    pub from: Option<LitStr>,
    /// `#[upshift(transform = path)]`: a function of the whole old value.
    pub transform: Option<Path>,
    /// `#[upshift(inverse = path)]`: `transform`'s inverse, for rollbacks.
    pub inverse: Option<Path>,
    /// Fields or variants.
    pub shape: Shape,
}

/// The body of a state type.
pub enum Shape {
    /// A struct's fields.
    Struct(Vec<StateField>),
    /// An enum's variants.
    Enum(Vec<StateVariant>),
}

/// One enum variant.
pub struct StateVariant {
    /// The variant's name.
    pub ident: Ident,
    /// `#[upshift(from = "Old")]`: the previous version's variant it continues.
    pub from: Option<LitStr>,
    /// The variant's fields.
    pub fields: Vec<StateField>,
}

/// Where a new field's value comes from, when not moved from a same-named field.
pub enum Default_ {
    /// `#[upshift(default)]`
    Trait,
    /// `#[upshift(default = path)]`
    Path(Path),
}

/// One field of a struct or variant.
pub struct StateField {
    /// The name, or the position for tuple fields.
    pub key: String,
    /// Tokens naming the field: its identifier, or its index.
    pub member: TokenStream,
    /// Span for errors about this field.
    pub span: Span,
    /// The field's type.
    pub ty: Type,
    /// The type as normalized text.
    pub ty_text: String,
    /// `#[upshift(default)]` or `#[upshift(default = path)]`.
    pub default: Option<Default_>,
    /// `#[upshift(from = "old")]`: the previous version's name of this field.
    pub from: Option<LitStr>,
    /// `#[upshift(with = path)]`: converts the old value.
    pub with: Option<Path>,
    /// `#[upshift(inverse = path)]`: `with`'s inverse, for rollbacks.
    pub inverse: Option<Path>,
}

impl StateType {
    /// The name of the type in the previous version.
    pub fn old_name(&self) -> String {
        self.from
            .as_ref()
            .map_or_else(|| self.ident.to_string(), LitStr::value)
    }
}

impl State {
    /// Builds the model from the module; records every problem in `cx`.
    pub fn from_module(cx: &Ctxt, args: StateArgs, module: ItemMod) -> Option<State> {
        attr::reject_misplaced(cx, &module.attrs, "the module");
        let Some((_, content)) = module.content else {
            cx.error_spanned_by(
                &module,
                "#[upshift::state] needs the module's body inline: write `mod name { ... }` with the versioned types inside",
            );
            return None;
        };
        let mut items = Vec::new();
        let mut versions: Vec<StateVersion> = Vec::new();
        let mut typed = 0;
        for item in content {
            let attrs = match &item {
                Item::Struct(s) => Some(&s.attrs),
                Item::Enum(e) => Some(&e.attrs),
                _ => None,
            };
            let Some(attrs) = attrs else {
                if let Item::Trait(t) = &item
                    && t.attrs.iter().any(attr::is_version)
                {
                    cx.error_spanned_by(&t.ident, "state versions are structs and enums; interfaces (traits) go in #[upshift::interface]");
                    continue;
                }
                items.push(item);
                continue;
            };
            if !attrs.iter().any(attr::is_version) {
                items.push(item);
                continue;
            }
            typed += 1;
            let Some((number, span)) = attr::version(cx, attrs, item_ident(&item).span()) else {
                continue;
            };
            let Some(ty) = StateType::from_item(cx, item) else {
                continue;
            };
            match versions.last_mut() {
                Some(v) if v.number == number => v.types.push(ty),
                Some(v) if number < v.number => cx.syn_error(syn::Error::new(
                    span,
                    format!(
                        "declare state types in increasing version order: v{number} comes after v{}; move it up",
                        v.number
                    ),
                )),
                Some(v) if number != v.number + 1 => cx.syn_error(syn::Error::new(
                    span,
                    format!(
                        "versions must be consecutive so that every upgrade is one step: after v{} comes v{}, not v{number}",
                        v.number,
                        v.number + 1
                    ),
                )),
                _ => versions.push(StateVersion {
                    number,
                    types: vec![ty],
                }),
            }
        }
        if versions.is_empty() {
            if typed == 0 {
                cx.error_spanned_by(
                    &module.ident,
                    "this state declares no version; add a struct marked #[version(1)] to the module (the first type of each version is its root)",
                );
            }
            return None;
        }
        let rollback = args.rollback;
        let name = args
            .name
            .map_or_else(|| module.ident.to_string(), |n| n.value());
        Some(State {
            attrs: module.attrs,
            vis: module.vis,
            module: module.ident,
            items,
            name,
            versions,
            rollback,
        })
    }
}

fn item_ident(item: &Item) -> &Ident {
    match item {
        Item::Struct(s) => &s.ident,
        Item::Enum(e) => &e.ident,
        _ => unreachable!("only structs and enums are versioned"),
    }
}

fn fields(cx: &Ctxt, fields: &mut Fields) -> Vec<StateField> {
    fields
        .iter_mut()
        .enumerate()
        .map(|(i, f)| {
            let opts = options(cx, &f.attrs, Place::Field);
            attr::reject_misplaced(
                cx,
                &f.attrs
                    .iter()
                    .filter(|a| attr::is_version(a))
                    .cloned()
                    .collect::<Vec<_>>(),
                "a field",
            );
            strip(&mut f.attrs);
            let (key, member, span) = match &f.ident {
                Some(ident) => (ident.to_string(), ident.to_token_stream(), ident.span()),
                None => {
                    let index = syn::Index::from(i);
                    (
                        i.to_string(),
                        quote!(#index),
                        syn::spanned::Spanned::span(&f.ty),
                    )
                }
            };
            StateField {
                key,
                member,
                span,
                ty_text: type_text(&f.ty),
                ty: f.ty.clone(),
                default: opts.default,
                from: opts.from,
                with: opts.with,
                inverse: opts.inverse,
            }
        })
        .collect()
}

impl StateType {
    fn from_item(cx: &Ctxt, mut item: Item) -> Option<StateType> {
        let (ident, attrs, generics) = match &item {
            Item::Struct(s) => (s.ident.clone(), s.attrs.clone(), s.generics.clone()),
            Item::Enum(e) => (e.ident.clone(), e.attrs.clone(), e.generics.clone()),
            _ => return None,
        };
        if !generics.params.is_empty() || generics.where_clause.is_some() {
            cx.error_spanned_by(
                &generics,
                "state types take no generic parameters: a snapshot must decode without knowing them",
            );
        }
        reject_serde_derive(cx, &attrs);
        let opts = options(cx, &attrs, Place::Type);
        // Serde attributes decide the encoding: each is modelled or refused.
        let data = match &item {
            Item::Struct(s) => Some(crate::encoding::Data::Struct(&s.fields)),
            Item::Enum(e) => Some(crate::encoding::Data::Enum(&e.variants)),
            _ => None,
        };
        for e in data
            .map(|d| crate::encoding::errors(&attrs, d))
            .unwrap_or_default()
        {
            cx.syn_error(e);
        }
        // `encoded_as` is read from the item as written; the emitted one
        // loses its `#[upshift(...)]` attributes.
        let written = item.clone();
        let shape = match &mut item {
            Item::Struct(s) => {
                strip(&mut s.attrs);
                Shape::Struct(fields(cx, &mut s.fields))
            }
            Item::Enum(e) => {
                strip(&mut e.attrs);
                let variants = e
                    .variants
                    .iter_mut()
                    .map(|v| {
                        let vopts = options(cx, &v.attrs, Place::Variant);
                        strip(&mut v.attrs);
                        StateVariant {
                            ident: v.ident.clone(),
                            from: vopts.from,
                            fields: fields(cx, &mut v.fields),
                        }
                    })
                    .collect();
                Shape::Enum(variants)
            }
            _ => return None,
        };
        Some(StateType {
            ident,
            item,
            written,
            from: opts.from,
            transform: opts.transform,
            inverse: opts.inverse,
            shape,
        })
    }
}
