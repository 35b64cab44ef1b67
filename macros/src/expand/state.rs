//! Expansion of `#[upshift::state]`: each version's types with serde, the
//! transform of each type from its predecessor, and the root's loading chain.
//!
//! The transform of a field is decided here, and every field that cannot be
//! derived is reported on that field with the attributes that would fix it.

use std::collections::BTreeSet;
use upshift_schema::report;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::{Item, Visibility};

use super::with_errors;

mod schema;
use crate::ctxt::Ctxt;
use crate::state_model::{Default_, Shape, State, StateArgs, StateField, StateType, StateVersion};

/// Expands `#[upshift::state]`.
pub fn state(
    args: TokenStream,
    input: TokenStream,
    file: Option<std::path::PathBuf>,
) -> TokenStream {
    let cx = Ctxt::default();
    let args = StateArgs::parse(&cx, args);
    let lock_option = args.lock.as_ref().map(|l| l.value());
    let usage = "#[upshift::state] goes on a module that holds the versioned types, as in \
                 `mod store { #[version(1)] pub struct Store { ... } }`";
    let (module, bodiless) = match super::parse_module(&cx, input, usage) {
        Ok(parsed) => parsed,
        Err(item) => return with_errors(cx, item),
    };
    let Some(state) = State::from_module(&cx, args, module) else {
        return with_errors(cx, bodiless);
    };
    let versions: Vec<TokenStream> = (0..state.versions.len())
        .map(|i| Gen::new(&cx, &state, i).module())
        .collect();
    // Released state versions are locked like interface versions.
    let lock_path = crate::lock::path(lock_option.as_deref(), file);
    let sections: Vec<_> = state
        .versions
        .iter()
        .map(|v| crate::lock::Section {
            key: format!("state {} v{}", state.name, v.number),
            lines: v
                .types
                .iter()
                .map(|t| crate::canonical::shape_line(&t.item))
                .collect(),
            span: v.types[0].ident.span(),
            what: format!("v{} of state `{}` is released", v.number, state.name),
            advice: "keep it as it was and declare the change as a new version".into(),
        })
        .collect();
    let values: Vec<_> = (0..state.versions.len())
        .map(|i| Gen::new(&cx, &state, i).value())
        .collect();
    let docs_json = upshift_schema::state_json(&values);
    if let Some(path) = &lock_path {
        report::write(&[report::Entry::Docs {
            lock: path.clone(),
            key: format!("state {}", state.name),
            versions: report::Definition::State(values),
        }]);
    }
    let lock = crate::lock::check_sections(&cx, &sections, lock_path);
    let lock_errors = lock.errors;
    if cx.has_errors() {
        let output = with_errors(cx, fallback(&state));
        return quote!(#output #lock_errors);
    }
    let lock_tracking = lock.tracking;
    let (attrs, vis, ident, items) = (&state.attrs, &state.vis, &state.module, &state.items);
    let name = &state.name;
    let latest = state.versions.last().map_or(0, |v| v.number);
    let schemas = state.versions.iter().map(|v| {
        let m = format_ident!("v{}", v.number);
        quote!(&#m::SCHEMA)
    });
    let output = quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*

            /// The state's name in snapshot headers and file names.
            pub const NAME: &::core::primitive::str = #name;

            /// The newest version declared.
            pub const LATEST: ::core::primitive::u32 = #latest;

            /// Every version's types and how each came from the one before, oldest first.
            pub static VERSIONS: &[&::upshift::schema::StateSchema] = &[#(#schemas),*];

            #[doc(hidden)]
            pub const __DOCS_JSON: &::core::primitive::str = #docs_json;

            #lock_tracking

            #(#versions)*
        }
        #lock_errors
    };
    with_errors(cx, output)
}

/// What is emitted beside errors: the module's items and each version's
/// types as written, without generated impls, so only the real errors show.
fn fallback(state: &State) -> TokenStream {
    let mut numbers = BTreeSet::new();
    let versions = state
        .versions
        .iter()
        .filter(|v| numbers.insert(v.number))
        .map(|v| {
            let module = format_ident!("v{}", v.number);
            let mut names = BTreeSet::new();
            let types = v
                .types
                .iter()
                .filter(|t| names.insert(t.ident.to_string()))
                .map(|t| &t.item);
            quote! {
                #[allow(dead_code, unused_imports)]
                pub mod #module {
                    use super::*;
                    #(#types)*
                }
            }
        });
    let (attrs, vis, ident, items) = (&state.attrs, &state.vis, &state.module, &state.items);
    quote! {
        #(#attrs)*
        #vis mod #ident {
            #(#items)*
            #(#versions)*
        }
    }
}

/// Generates one version module.
struct Gen<'a> {
    cx: &'a Ctxt,
    state: &'a State,
    v: &'a StateVersion,
    prev: Option<&'a StateVersion>,
    /// Names of this version's types: fields that mention one transform through it.
    names: BTreeSet<String>,
}

impl<'a> Gen<'a> {
    fn new(cx: &'a Ctxt, state: &'a State, index: usize) -> Self {
        let v = &state.versions[index];
        Gen {
            cx,
            state,
            v,
            prev: index.checked_sub(1).map(|i| &state.versions[i]),
            names: v.types.iter().map(|t| t.ident.to_string()).collect(),
        }
    }

    fn module(&self) -> TokenStream {
        let number = self.v.number;
        let module = format_ident!("v{}", number);
        let doc = format!(" Version {number} of the `{}` state.", self.state.name);
        self.check_types();
        let types = self.v.types.iter().map(|t| self.item(t));
        let parts = self.v.types.iter().filter_map(|t| self.parts_fn(t));
        let upgrades = self.v.types.iter().filter_map(|t| self.upgrade(t));
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
                #root
                #schema
                #requires
            }
        }
    }

    fn check_types(&self) {
        let mut seen = BTreeSet::new();
        for t in &self.v.types {
            if !seen.insert(t.ident.to_string()) {
                self.cx.error_spanned_by(
                    &t.ident,
                    format!(
                        "`{}` is declared twice in v{}; each version declares each type once",
                        t.ident, self.v.number
                    ),
                );
            }
        }
        let root = &self.v.types[0];
        match self.prev {
            None => {
                for t in &self.v.types {
                    self.reject_transform_attrs(t);
                }
            }
            Some(prev) => {
                let prev_root = &prev.types[0];
                // A `from` that names no type of the previous version gets its own error.
                let unknown_from =
                    root.from.is_some() && !prev.types.iter().any(|t| t.ident == root.old_name());
                if prev_root.ident != root.old_name() && !unknown_from {
                    self.cx.error_spanned_by(
                        &root.ident,
                        format!(
                            "the first type of a version is its root, and v{}'s root `{}` does not continue v{}'s root `{}`; \
                             declare `{}` first, or add #[upshift(from = \"{}\")] if the root was renamed",
                            self.v.number, root.ident, prev.number, prev_root.ident, prev_root.ident, prev_root.ident
                        ),
                    );
                }
            }
        }
    }

    /// Errors for transform attributes in the first version.
    fn reject_transform_attrs(&self, t: &StateType) {
        let first = |tokens: &dyn quote::ToTokens| {
            self.cx.error_spanned_by(
                tokens,
                format!(
                    "v{} is the first version of this state: there is nothing to transform from; remove this attribute",
                    self.v.number
                ),
            );
        };
        if let Some(from) = &t.from {
            first(from);
        }
        if let Some(transform) = &t.transform {
            first(transform);
        }
        let fields: Vec<&StateField> = match &t.shape {
            Shape::Struct(fields) => fields.iter().collect(),
            Shape::Enum(variants) => {
                for v in variants {
                    if let Some(from) = &v.from {
                        first(from);
                    }
                }
                variants.iter().flat_map(|v| &v.fields).collect()
            }
        };
        for f in fields {
            if let Some(from) = &f.from {
                first(from);
            }
            if let Some(with) = &f.with {
                first(with);
            }
            if f.default.is_some() {
                self.cx.syn_error(syn::Error::new(
                    f.span,
                    format!(
                        "v{} is the first version: `default` has no effect here; remove it",
                        self.v.number
                    ),
                ));
            }
        }
    }

    /// The user's item with serde derives; private types become `pub(super)`
    /// so the next version's transform can name them.
    fn item(&self, t: &StateType) -> TokenStream {
        let mut item = t.item.clone();
        let vis = match &mut item {
            Item::Struct(s) => &mut s.vis,
            Item::Enum(e) => &mut e.vis,
            _ => return quote!(#item),
        };
        if matches!(vis, Visibility::Inherited) {
            *vis = syn::parse_quote!(pub(super));
        }
        let (ident, lines) = match &item {
            Item::Struct(s) => (&s.ident, crate::canonical::shape_lines(Some(&s.fields), [])),
            Item::Enum(e) => (&e.ident, crate::canonical::shape_lines(None, &e.variants)),
            _ => return quote!(#item),
        };
        quote! {
            #[derive(::upshift::__private::serde::Serialize, ::upshift::__private::serde::Deserialize)]
            #[serde(crate = "::upshift::__private::serde")]
            #item

            #[automatically_derived]
            impl ::upshift::schema::Schema for #ident {
                const SHAPE: &'static [&'static ::core::primitive::str] = &[#(#lines),*];
            }
        }
    }

    /// Every field type of this version must have a schema, so a user type
    /// stored in the state is locked with it.
    fn require_schemas(&self) -> TokenStream {
        let mut types = Vec::new();
        for t in &self.v.types {
            match &t.item {
                Item::Struct(s) => types.extend(s.fields.iter().map(|f| &f.ty)),
                Item::Enum(e) => types.extend(
                    e.variants
                        .iter()
                        .flat_map(|v| v.fields.iter().map(|f| &f.ty)),
                ),
                _ => {}
            }
        }
        crate::model::require_schemas(types)
    }

    /// `__into_parts`: a struct's fields by value, for the next version's
    /// transform, which cannot see private fields.
    fn parts_fn(&self, t: &StateType) -> Option<TokenStream> {
        let Shape::Struct(fields) = &t.shape else {
            return None;
        };
        let ident = &t.ident;
        let members = fields.iter().map(|f| &f.member);
        let bindings: Vec<Ident> = (0..fields.len())
            .map(|i| format_ident!("__f{}", i))
            .collect();
        let tys = fields.iter().map(|f| &f.ty);
        Some(quote! {
            impl #ident {
                #[doc(hidden)]
                pub fn __into_parts(self) -> (#(#tys,)*) {
                    let #ident { #(#members: #bindings),* } = self;
                    (#(#bindings,)*)
                }
            }
        })
    }

    fn predecessor(&self, t: &StateType) -> Option<&'a StateType> {
        let prev = self.prev?;
        let old = t.old_name();
        let found = prev.types.iter().find(|p| p.ident == old);
        if found.is_none() {
            if let Some(from) = &t.from {
                let names: Vec<String> = prev
                    .types
                    .iter()
                    .map(|p| format!("`{}`", p.ident))
                    .collect();
                self.cx.error_spanned_by(
                    from,
                    format!(
                        "v{} has no type `{old}` to continue; its types are {}",
                        prev.number,
                        names.join(", ")
                    ),
                );
            } else if let Some(transform) = &t.transform {
                self.cx.error_spanned_by(
                    transform,
                    format!(
                        "`{}` is new in v{}: there is nothing to transform from; remove `transform`, or add `from = \"OldName\"`",
                        t.ident, self.v.number
                    ),
                );
            }
        }
        found
    }

    /// `impl Upgrade<vP::Old> for New`.
    fn upgrade(&self, t: &StateType) -> Option<TokenStream> {
        let old = self.predecessor(t)?;
        let prev = self.prev?;
        let prev_mod = format_ident!("v{}", prev.number);
        let old_ident = &old.ident;
        let ident = &t.ident;
        let err = Err_ {
            from: prev.number,
            to: self.v.number,
            type_name: ident.to_string(),
        };
        let body = if let Some(transform) = &t.transform {
            let error = err.build(None, quote!(__reason));
            quote! {
                match ::upshift::__private::Outcome::<Self>::into_outcome(#transform(__old)) {
                    ::core::result::Result::Ok(__new) => ::core::result::Result::Ok(__new),
                    ::core::result::Result::Err(__reason) => ::core::result::Result::Err(#error),
                }
            }
        } else {
            match (&old.shape, &t.shape) {
                (Shape::Struct(old_fields), Shape::Struct(new_fields)) => {
                    let bindings = (0..old_fields.len()).map(|i| binding(&old_fields[i]));
                    let inits = self.fields(&err, &t.ident, old_fields, new_fields);
                    quote! {
                        let (#(#bindings,)*) = super::#prev_mod::#old_ident::__into_parts(__old);
                        ::core::result::Result::Ok(#ident { #(#inits),* })
                    }
                }
                (Shape::Enum(old_variants), Shape::Enum(new_variants)) => {
                    let arms = old_variants.iter().filter_map(|ov| {
                        let nv = new_variants.iter().find(|nv| {
                            nv.from.as_ref().map_or_else(|| nv.ident == ov.ident, |f| ov.ident == f.value())
                        });
                        let Some(nv) = nv else {
                            self.cx.error_spanned_by(
                                ident,
                                format!(
                                    "variant `{}` of v{} has no counterpart in v{}: add #[upshift(from = \"{}\")] to the variant it became, \
                                     or convert the whole enum with #[upshift(transform = path)]",
                                    ov.ident, prev.number, self.v.number, ov.ident
                                ),
                            );
                            return None;
                        };
                        let (ovi, nvi) = (&ov.ident, &nv.ident);
                        let members = ov.fields.iter().map(|f| &f.member);
                        let bindings = ov.fields.iter().map(binding);
                        let inits = self.fields(&err, nvi, &ov.fields, &nv.fields);
                        Some(quote! {
                            super::#prev_mod::#old_ident::#ovi { #(#members: #bindings),* } => #ident::#nvi { #(#inits),* }
                        })
                    });
                    let arms: Vec<_> = arms.collect();
                    quote! {
                        ::core::result::Result::Ok(match __old {
                            #(#arms,)*
                        })
                    }
                }
                _ => {
                    self.cx.error_spanned_by(
                        ident,
                        format!(
                            "`{ident}` changed between a struct and an enum from v{} to v{}; convert it with #[upshift(transform = path)]",
                            prev.number, self.v.number
                        ),
                    );
                    return None;
                }
            }
        };
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

    /// Where a new field's value comes from, decided from the attributes
    /// alone (no errors here: `fields` reports the impossible plans).
    pub(super) fn plan<'f>(&self, old: &'f [StateField], f: &'f StateField) -> Plan<'f> {
        let source_key = f.from.as_ref().map_or_else(|| f.key.clone(), |l| l.value());
        let source = old.iter().find(|o| o.key == source_key);
        match (source, &f.default, &f.with) {
            (Some(_), Some(_), _) => Plan::DefaultDrops,
            (None, Some(default), _) => Plan::Default(default),
            (Some(o), None, Some(with)) => Plan::Convert(o, with),
            (Some(o), None, None) if o.ty_text == self.old_spelling(&f.ty) => {
                if self.mentions_state_type(&f.ty) {
                    Plan::Nested(o)
                } else {
                    Plan::Move(o)
                }
            }
            (Some(o), None, None) => Plan::Retyped(o),
            (None, None, _) => Plan::Missing,
        }
    }

    /// The initializer of each new field, from the old fields.
    fn fields(
        &self,
        err: &Err_,
        owner: &Ident,
        old: &[StateField],
        new: &[StateField],
    ) -> Vec<TokenStream> {
        let prev = self.prev.map_or(0, |p| p.number);
        new.iter()
            .map(|f| {
                let member = &f.member;
                let source_key = f.from.as_ref().map_or_else(|| f.key.clone(), |l| l.value());
                let value = match self.plan(old, f) {
                    Plan::DefaultDrops => {
                        self.cx.syn_error(syn::Error::new(
                            f.span,
                            format!(
                                "`{}` of `{owner}` exists in v{prev}, so `default` would drop its value; remove `default`, \
                                 or convert the old value with `with = path`",
                                source_key
                            ),
                        ));
                        placeholder()
                    }
                    Plan::Default(Default_::Trait) => quote_spanned!(f.span=> ::core::default::Default::default()),
                    Plan::Default(Default_::Path(path)) => quote_spanned!(f.span=> #path()),
                    Plan::Convert(o, with) => {
                        let (b, ty) = (binding(o), &f.ty);
                        let error = err.build(Some(&f.key), quote!(__reason));
                        quote_spanned! {f.span=>
                            match ::upshift::__private::Outcome::<#ty>::into_outcome(#with(#b)) {
                                ::core::result::Result::Ok(__value) => __value,
                                ::core::result::Result::Err(__reason) => return ::core::result::Result::Err(#error),
                            }
                        }
                    }
                    Plan::Nested(o) => {
                        let b = binding(o);
                        quote_spanned!(f.span=> ::upshift::state::Upgrade::upgrade(#b)?)
                    }
                    Plan::Move(o) => {
                        let b = binding(o);
                        quote!(#b)
                    }
                    Plan::Retyped(o) => {
                        self.cx.syn_error(syn::Error::new(
                            f.span,
                            format!(
                                "`{}` of `{owner}` changed type from `{}` in v{prev} to `{}` in v{}; add \
                                 #[upshift(with = path)] naming a function from the old value (fn({}) -> {}, or -> Result<{}, E>)",
                                f.key, o.ty_text, f.ty_text, self.v.number, o.ty_text, f.ty_text, f.ty_text
                            ),
                        ));
                        placeholder()
                    }
                    Plan::Missing => {
                        let names: Vec<String> = old.iter().map(|o| format!("`{}`", o.key)).collect();
                        let old_fields = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                        let message = match (&f.from, &f.with) {
                            (Some(_), _) => format!(
                                "`{owner}` has no field `{source_key}` in v{prev} to take `{}` from; its fields there are {old_fields}",
                                f.key
                            ),
                            (None, Some(_)) => format!(
                                "`{}` of `{owner}` has no field of that name in v{prev} to convert; name the old field with \
                                 #[upshift(from = \"old_name\")] (fields in v{prev}: {old_fields})",
                                f.key
                            ),
                            (None, None) => format!(
                                "`{}` of `{owner}` is new in v{}, so it has no value to start from; add #[upshift(default)], \
                                 #[upshift(default = path)], or #[upshift(from = \"old_name\")] if it was renamed \
                                 (fields in v{prev}: {old_fields})",
                                f.key, self.v.number
                            ),
                        };
                        self.cx.syn_error(syn::Error::new(f.span, message));
                        placeholder()
                    }
                };
                quote!(#member: #value)
            })
            .collect()
    }

    /// A type as the previous version spells it: this version's types that
    /// were renamed with `from` take their old names, so `Vec<Book>` matches
    /// v1's `Vec<Account>` when `Book` continues `Account`.
    fn old_spelling(&self, ty: &syn::Type) -> String {
        fn rename(tokens: TokenStream, types: &[crate::state_model::StateType]) -> TokenStream {
            tokens
                .into_iter()
                .map(|t| match t {
                    TokenTree::Ident(i) => match types.iter().find(|t| t.ident == i) {
                        Some(t) => TokenTree::Ident(Ident::new(&t.old_name(), i.span())),
                        None => TokenTree::Ident(i),
                    },
                    TokenTree::Group(g) => {
                        let mut group =
                            proc_macro2::Group::new(g.delimiter(), rename(g.stream(), types));
                        group.set_span(g.span());
                        TokenTree::Group(group)
                    }
                    other => other,
                })
                .collect()
        }
        crate::canonical::type_text(&rename(quote!(#ty), &self.v.types))
    }

    /// Whether a type names one of this version's types, so an unchanged
    /// field still needs that type's transform.
    fn mentions_state_type(&self, ty: &syn::Type) -> bool {
        fn walk(tokens: TokenStream, names: &BTreeSet<String>) -> bool {
            tokens.into_iter().any(|t| match t {
                TokenTree::Ident(i) => names.contains(&i.to_string()),
                TokenTree::Group(g) => walk(g.stream(), names),
                _ => false,
            })
        }
        walk(quote!(#ty), &self.names)
    }

    /// `impl Versioned for Root`.
    fn versioned(&self) -> TokenStream {
        let root = &self.v.types[0].ident;
        let number = self.v.number;
        let oldest = self.state.versions[0].number;
        let older = match self.prev {
            Some(prev) => {
                let prev_mod = format_ident!("v{}", prev.number);
                let prev_root = &prev.types[0].ident;
                quote! {
                    let __prev = <super::#prev_mod::#prev_root as ::upshift::state::Versioned>::decode_from(__version, __payload)?;
                    <Self as ::upshift::state::Upgrade<super::#prev_mod::#prev_root>>::upgrade(__prev)
                        .map_err(::upshift::state::StateError::Transform)
                }
            }
            None => quote! {
                ::core::result::Result::Err(::upshift::state::StateError::TooOld { found: __version, oldest: #oldest })
            },
        };
        quote! {
            #[automatically_derived]
            impl ::upshift::state::Versioned for #root {
                const NAME: &'static ::core::primitive::str = super::NAME;
                const VERSION: ::core::primitive::u32 = #number;
                const OLDEST: ::core::primitive::u32 = #oldest;

                fn decode_from(
                    __version: ::core::primitive::u32,
                    __payload: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, ::upshift::state::StateError> {
                    if __version == #number {
                        return ::upshift::state::decode_payload(__version, __payload);
                    }
                    if __version > #number {
                        return ::core::result::Result::Err(::upshift::state::StateError::FutureVersion {
                            found: __version,
                            known: #number,
                        });
                    }
                    #older
                }
            }
        }
    }
}

/// Where a new field's value comes from in a transform.
pub(super) enum Plan<'f> {
    /// Moved from the old field (same type as written).
    Move(&'f StateField),
    /// Same type as written, holding state types that changed: upgraded.
    Nested(&'f StateField),
    /// Converted from the old field by `with = path`.
    Convert(&'f StateField, &'f syn::Path),
    /// A new field starting from `default` or `default = path`.
    Default(&'f Default_),
    /// `default` on a field whose old value exists (an error).
    DefaultDrops,
    /// Same field, other type, no `with` (an error).
    Retyped(&'f StateField),
    /// No old field to take the value from, and no default (an error).
    Missing,
}

/// Stands in for a field value that could not be derived (an error says
/// why), so the rest of the expansion still type-checks.
fn placeholder() -> TokenStream {
    quote!(::core::unreachable!())
}

/// The local that holds an old field's value during a transform.
fn binding(f: &StateField) -> Ident {
    format_ident!("__old_{}", f.key)
}

/// What a failed step reports.
struct Err_ {
    from: u32,
    to: u32,
    type_name: String,
}

impl Err_ {
    fn build(&self, field: Option<&str>, reason: TokenStream) -> TokenStream {
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
