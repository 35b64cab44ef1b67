//! Version metadata as the user's crate gets it: the macros compute each
//! version's `upshift_schema` value once, then emit it both as the tokens of
//! a `static` (here) and as JSON for `upshift docs` (`upshift_schema`'s
//! serde), so the statics and the reports cannot disagree.

use proc_macro2::TokenStream;
use quote::quote;
use upshift_schema::{
    ArgSchema, Change, InterfaceSchema, MemberChange, MemberSchema, MethodSchema, Origin,
    StateSchema, Text, TypeKind, TypeSchema,
};

/// `::upshift::schema` — every path below starts here.
fn schema() -> TokenStream {
    quote!(::upshift::schema)
}

fn text(t: &Text) -> TokenStream {
    let s: &str = t;
    quote!(::upshift::schema::Text::Borrowed(#s))
}

fn list(items: impl Iterator<Item = TokenStream>) -> TokenStream {
    quote!(::upshift::schema::List::Borrowed(&[#(#items),*]))
}

fn texts(items: &[Text]) -> TokenStream {
    list(items.iter().map(text))
}

/// An expression that builds `value` in a `static`.
pub fn interface_tokens(value: &InterfaceSchema) -> TokenStream {
    let s = schema();
    let (service, version, doc) = (text(&value.service), value.version, text(&value.doc));
    let methods = list(value.methods.iter().map(method_tokens));
    let removed = texts(&value.removed);
    quote! {
        #s::InterfaceSchema {
            service: #service,
            version: #version,
            doc: #doc,
            methods: #methods,
            removed: #removed,
        }
    }
}

fn method_tokens(m: &MethodSchema) -> TokenStream {
    let s = schema();
    let (name, index, returns) = (text(&m.name), m.index, text(&m.returns));
    let args = list(m.args.iter().map(|a: &ArgSchema| {
        let (name, ty) = (text(&a.name), text(&a.ty));
        quote!(#s::ArgSchema { name: #name, ty: #ty })
    }));
    let change = match m.change {
        Change::Added => quote!(Added),
        Change::Unchanged => quote!(Unchanged),
        Change::Changed => quote!(Changed),
    };
    quote! {
        #s::MethodSchema {
            name: #name,
            index: #index,
            args: #args,
            returns: #returns,
            change: #s::Change::#change,
        }
    }
}

/// An expression that builds `value` in a `static`.
pub fn state_tokens(value: &StateSchema) -> TokenStream {
    let s = schema();
    let (state, version, doc) = (text(&value.state), value.version, text(&value.doc));
    let types = list(value.types.iter().map(type_tokens));
    let removed = texts(&value.removed);
    quote! {
        #s::StateSchema {
            state: #state,
            version: #version,
            doc: #doc,
            types: #types,
            removed: #removed,
        }
    }
}

fn type_tokens(t: &TypeSchema) -> TokenStream {
    let s = schema();
    let (name, shape) = (text(&t.name), text(&t.shape));
    let kind = match t.kind {
        TypeKind::Struct => quote!(Struct),
        TypeKind::Enum => quote!(Enum),
    };
    let origin = match &t.origin {
        Origin::New => quote!(#s::Origin::New),
        Origin::Continues { from } => {
            let from = text(from);
            quote!(#s::Origin::Continues { from: #from })
        }
        Origin::Transform { from, with } => {
            let (from, with) = (text(from), text(with));
            quote!(#s::Origin::Transform { from: #from, with: #with })
        }
    };
    let members = list(t.members.iter().map(member_tokens));
    let removed = texts(&t.removed);
    quote! {
        #s::TypeSchema {
            name: #name,
            kind: #s::TypeKind::#kind,
            shape: #shape,
            origin: #origin,
            members: #members,
            removed: #removed,
        }
    }
}

fn member_tokens(m: &MemberSchema) -> TokenStream {
    let s = schema();
    let (name, ty) = (text(&m.name), text(&m.ty));
    let change = match &m.change {
        MemberChange::New => quote!(#s::MemberChange::New),
        MemberChange::Kept { from } => {
            let from = text(from);
            quote!(#s::MemberChange::Kept { from: #from })
        }
        MemberChange::Upgraded { from } => {
            let from = text(from);
            quote!(#s::MemberChange::Upgraded { from: #from })
        }
        MemberChange::Converted {
            from,
            from_ty,
            with,
        } => {
            let (from, from_ty, with) = (text(from), text(from_ty), text(with));
            quote!(#s::MemberChange::Converted { from: #from, from_ty: #from_ty, with: #with })
        }
        MemberChange::Defaulted { with: None } => {
            quote!(#s::MemberChange::Defaulted { with: ::core::option::Option::None })
        }
        MemberChange::Defaulted { with: Some(path) } => {
            let path = text(path);
            quote!(#s::MemberChange::Defaulted { with: ::core::option::Option::Some(#path) })
        }
        MemberChange::Reshaped { from } => {
            let from = text(from);
            quote!(#s::MemberChange::Reshaped { from: #from })
        }
        MemberChange::ByTransform => quote!(#s::MemberChange::ByTransform),
    };
    quote!(#s::MemberSchema { name: #name, ty: #ty, change: #change })
}
