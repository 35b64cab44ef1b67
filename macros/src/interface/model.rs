//! The interface model: services, versions, methods and arguments as plain
//! structs, built from the user's module and free of further syntax concerns.

use proc_macro2::Span;
use syn::{
    Attribute, FnArg, Ident, Item, ItemMod, ItemTrait, Pat, ReturnType, TraitItem, TraitItemFn,
    Type, Visibility,
};

use crate::attr::{self, InterfaceArgs};
use crate::canonical::type_text;
use crate::ctxt::Ctxt;

/// One service: every declared version of its interface.
pub struct Service {
    /// Attributes of the module, passed through.
    pub attrs: Vec<Attribute>,
    /// Visibility of the module.
    pub vis: Visibility,
    /// The module's name.
    pub module: Ident,
    /// Items of the module that are not versions, passed through.
    pub items: Vec<Item>,
    /// The trait name shared by every version.
    pub trait_name: Ident,
    /// The name on the wire.
    pub wire_name: String,
    /// Versions in declaration order (checked to ascend without gaps).
    pub versions: Vec<Version>,
}

/// One version of the interface.
pub struct Version {
    /// The version number.
    pub number: u32,
    /// Span of the number in `#[version(N)]`.
    pub number_span: Span,
    /// The trait's identifier (the same in every version).
    pub ident: Ident,
    /// Doc comments on the trait.
    pub docs: Vec<Attribute>,
    /// Methods in declaration order.
    pub methods: Vec<Method>,
}

/// One method of a version.
pub struct Method {
    /// The method name.
    pub ident: Ident,
    /// Doc comments and other attributes passed through to the server trait.
    pub attrs: Vec<Attribute>,
    /// Arguments after `&self`.
    pub args: Vec<Arg>,
    /// The return type; `()` when omitted.
    pub ret: Type,
    /// The return type as normalized text.
    pub ret_text: String,
}

/// One argument of a method.
pub struct Arg {
    /// The argument name.
    pub ident: Ident,
    /// The argument type.
    pub ty: Type,
    /// The type as normalized text.
    pub ty_text: String,
}

impl Method {
    /// The request and response variant of this method: `put_many` becomes `PutMany`.
    pub fn variant(&self) -> Ident {
        let mut out = String::new();
        let mut upper = true;
        for c in self.ident.to_string().trim_start_matches("r#").chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        Ident::new(&out, self.ident.span())
    }

    /// Whether a caller of `self` and a caller of `other` send and expect the
    /// same message: same argument types in order and the same return type.
    pub fn same_signature(&self, other: &Method) -> bool {
        self.ret_text == other.ret_text
            && self.args.len() == other.args.len()
            && self
                .args
                .iter()
                .zip(&other.args)
                .all(|(a, b)| a.ty_text == b.ty_text)
    }
}

impl Service {
    /// Builds the model from the module; records every problem in `cx`.
    /// Returns `None` only when the input has no module body to work on.
    pub fn from_module(cx: &Ctxt, args: InterfaceArgs, module: ItemMod) -> Option<Service> {
        attr::reject_misplaced(cx, &module.attrs, "the module");
        let Some((_, content)) = module.content else {
            cx.error_spanned_by(
                &module,
                "#[upshift::interface] needs the module's body inline: write `mod name { ... }` with the versioned traits inside",
            );
            return None;
        };
        let mut items = Vec::new();
        let mut versions = Vec::new();
        let mut traits = 0;
        for item in content {
            match item {
                Item::Trait(t) => {
                    traits += 1;
                    if let Some(v) = Version::from_trait(cx, t) {
                        versions.push(v);
                    }
                }
                other => {
                    attr::reject_misplaced(cx, item_attrs(&other), "this item");
                    items.push(other);
                }
            }
        }
        let Some(first) = versions.first() else {
            // A trait whose version did not parse has its own error already.
            if traits == 0 {
                cx.error_spanned_by(
                &module.ident,
                    "this interface declares no version; add a trait marked #[version(1)] to the module",
                );
            }
            return None;
        };
        let trait_name = first.ident.clone();
        let wire_name = args
            .name
            .map_or_else(|| trait_name.to_string(), |n| n.value());
        Some(Service {
            attrs: module.attrs,
            vis: module.vis,
            module: module.ident,
            items,
            trait_name,
            wire_name,
            versions,
        })
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl Version {
    fn from_trait(cx: &Ctxt, t: ItemTrait) -> Option<Version> {
        let version = attr::version(cx, &t.attrs, t.ident.span());
        for a in t.attrs.iter().filter(|a| attr::is_upshift(a)) {
            cx.error_spanned_by(a, "#[upshift(...)] has no options for an interface trait; only #[version(N)] goes here");
        }
        if let Some(unsafety) = &t.unsafety {
            cx.error_spanned_by(
                unsafety,
                "interface traits cannot be `unsafe`; remove `unsafe`",
            );
        }
        if let Some(auto) = &t.auto_token {
            cx.error_spanned_by(auto, "interface traits cannot be `auto`; remove `auto`");
        }
        if !t.generics.params.is_empty() || t.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &t.generics,
                "interface traits take no generic parameters or where clauses; messages cross the network, so use concrete types",
            );
        }
        if let Some(colon) = &t.colon_token {
            let supertraits = &t.supertraits;
            cx.error_spanned_by(
                quote::quote!(#colon #supertraits),
                "interface traits take no supertraits; the generated trait already requires Send + Sync + 'static",
            );
        }
        let mut methods: Vec<Method> = Vec::new();
        for item in t.items {
            match item {
                TraitItem::Fn(f) => {
                    if let Some(m) = Method::from_fn(cx, f) {
                        if methods.iter().any(|e| e.ident == m.ident) {
                            cx.error_spanned_by(
                                &m.ident,
                                format!("method `{}` is declared twice in this version; rename or remove one", m.ident),
                            );
                        } else {
                            methods.push(m);
                        }
                    }
                }
                other => cx.error_spanned_by(
                    &other,
                    "interface traits hold only `async fn` methods; move types and constants out of the trait",
                ),
            }
        }
        if methods.len() > usize::from(u16::MAX) {
            cx.error_spanned_by(&t.ident, "a version can declare at most 65535 methods");
        }
        let (number, number_span) = version?;
        Some(Version {
            number,
            number_span,
            ident: t.ident,
            docs: attr::docs(&t.attrs),
            methods,
        })
    }
}

impl Method {
    fn from_fn(cx: &Ctxt, f: TraitItemFn) -> Option<Method> {
        let sig = &f.sig;
        let before = cx.has_errors();
        attr::reject_misplaced(cx, &f.attrs, "a method");
        if sig.asyncness.is_none() {
            cx.error_spanned_by(
                sig.fn_token,
                format!("interface methods are called over the network, so they must be async: write `async fn {}`", sig.ident),
            );
        }
        if let Some(c) = &sig.constness {
            cx.error_spanned_by(c, "interface methods cannot be `const`");
        }
        if let Some(u) = &sig.unsafety {
            cx.error_spanned_by(u, "interface methods cannot be `unsafe`");
        }
        if let Some(abi) = &sig.abi {
            cx.error_spanned_by(abi, "interface methods cannot declare an ABI");
        }
        if let Some(v) = &sig.variadic {
            cx.error_spanned_by(v, "interface methods cannot be variadic");
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                "interface methods take no generic parameters; every version's messages need concrete types",
            );
        }
        if let Some(body) = &f.default {
            cx.error_spanned_by(
                body,
                "interface methods declare a signature only; implement them on your service object instead, and end the declaration with `;`",
            );
        }
        if sig.ident.to_string().starts_with("__") {
            cx.error_spanned_by(
                &sig.ident,
                "names starting with `__` are reserved for generated code; rename the method",
            );
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
            Some(FnArg::Receiver(r)) => cx.error_spanned_by(
                r,
                "interface methods take `&self`; many calls run at once, so use interior mutability (a Mutex or atomics) for state",
            ),
            Some(FnArg::Typed(_)) | None => cx.syn_error(syn::Error::new(
                sig.paren_token.span.join(),
                "interface methods take `&self` as their first parameter",
            )),
        }
        let mut args = Vec::new();
        for input in inputs {
            let FnArg::Typed(pt) = input else { continue };
            attr::reject_misplaced(cx, &pt.attrs, "an argument");
            match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.mutability.is_none() && pi.subpat.is_none() => {
                    if pi.ident.to_string().starts_with("__") {
                        cx.error_spanned_by(&pi.ident, "names starting with `__` are reserved for generated code; rename the argument");
                    }
                    check_wire_type(cx, &pt.ty);
                    args.push(Arg {
                        ident: pi.ident.clone(),
                        ty_text: type_text(&pt.ty),
                        ty: (*pt.ty).clone(),
                    });
                }
                other => cx.error_spanned_by(
                    other,
                    "arguments of interface methods are plain names, as in `key: String`; they name fields of the request message",
                ),
            }
        }
        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => {
                check_wire_type(cx, ty);
                (**ty).clone()
            }
        };
        if cx.has_errors() && !before {
            return None;
        }
        Some(Method {
            ident: sig.ident.clone(),
            attrs: f
                .attrs
                .iter()
                .filter(|a| !attr::is_version(a) && !attr::is_upshift(a))
                .cloned()
                .collect(),
            ret_text: type_text(&ret),
            ret,
            args,
        })
    }
}

/// Checks that a type can cross the network: owned, concrete, not `Self`.
fn check_wire_type(cx: &Ctxt, ty: &Type) {
    let problem = match ty {
        Type::Reference(_) => Some(
            "arguments and return values cross the network, so they must be owned: use `String` for `&str`, `Vec<T>` for `&[T]`",
        ),
        Type::ImplTrait(_) => Some("`impl Trait` has no wire format; use a concrete type"),
        Type::TraitObject(_) => Some("trait objects have no wire format; use a concrete type"),
        Type::BareFn(_) | Type::Ptr(_) => {
            Some("functions and pointers cannot cross the network; use plain data")
        }
        Type::Infer(_) => Some("write the type out; `_` cannot be inferred in an interface"),
        Type::Never(_) => Some("`!` cannot be sent as a reply; return `()` or a Result"),
        Type::Macro(_) => Some("type macros are not supported in interfaces; write the type out"),
        _ => None,
    };
    if let Some(message) = problem {
        cx.error_spanned_by(ty, message);
        return;
    }
    match ty {
        Type::Path(p) => {
            if p.qself.is_some() {
                cx.error_spanned_by(ty, "qualified paths like `<T as Trait>::X` are not supported in interfaces; name the type directly");
            }
            for seg in &p.path.segments {
                if seg.ident == "Self" {
                    cx.error_spanned_by(
                        seg,
                        "`Self` has no meaning across versions; name the type directly",
                    );
                }
                if let syn::PathArguments::AngleBracketed(a) = &seg.arguments {
                    for arg in &a.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            check_wire_type(cx, t);
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter().for_each(|t| check_wire_type(cx, t)),
        Type::Array(t) => check_wire_type(cx, &t.elem),
        Type::Slice(t) => check_wire_type(cx, &t.elem),
        Type::Paren(t) => check_wire_type(cx, &t.elem),
        Type::Group(t) => check_wire_type(cx, &t.elem),
        _ => {}
    }
}
