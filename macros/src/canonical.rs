//! The canonical lines: the one grammar in which upshift writes the shape of
//! a version or a type for lock files, metadata and messages. Every writer
//! of such a line is here.
//!
//! | line | for |
//! |---|---|
//! | `method get(key: String) -> Option<String>` | an interface version's method |
//! | `struct Entry { value: String, hits: u64 }` | a state type |
//! | `field value: String`, `variant Gone(0: u64)` | a type deriving `Schema` |

use quote::ToTokens;
use syn::Item;

/// Type tokens as text with spacing normalized, for comparisons and metadata.
pub fn type_text(ty: &impl ToTokens) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            let glue =
                |c: Option<char>| matches!(c, Some('<' | '>' | ':' | '&' | '(' | ')' | '[' | ']'));
            if glue(prev) || glue(next) || next == Some(',') || next == Some(';') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Fields as canonical text: ` { name: Type, .. }`, `(0: Type, ..)`, or empty.
pub fn fields_text(fields: &syn::Fields) -> String {
    let parts: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ident {
            Some(name) => format!("{name}: {}", type_text(&f.ty)),
            None => format!("{i}: {}", type_text(&f.ty)),
        })
        .collect();
    match fields {
        syn::Fields::Named(_) => format!(" {{ {} }}", parts.join(", ")),
        syn::Fields::Unnamed(_) => format!("({})", parts.join(", ")),
        syn::Fields::Unit => String::new(),
    }
}

/// A deriving type's lock-section lines: `field name: Type` per field of a
/// struct, `variant Name(..)` per variant of an enum.
pub fn shape_lines<'a>(
    fields: Option<&syn::Fields>,
    variants: impl IntoIterator<Item = &'a syn::Variant>,
) -> Vec<String> {
    match fields {
        Some(fields) => fields
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
        None => variants
            .into_iter()
            .map(|v| format!("variant {}{}", v.ident, fields_text(&v.fields)))
            .collect(),
    }
}

/// An interface version's method: `method name(arg: Type, ..) -> Ret`.
pub fn method_line<'a>(
    name: &impl std::fmt::Display,
    args: impl IntoIterator<Item = (&'a syn::Ident, &'a str)>,
    returns: &str,
) -> String {
    let args: Vec<String> = args
        .into_iter()
        .map(|(arg, ty)| format!("{arg}: {ty}"))
        .collect();
    format!("method {name}({}) -> {returns}", args.join(", "))
}

/// One canonical line for a state type: `struct Name { field: Type, .. }`
/// or `enum Name { Variant(Type), .. }`.
pub fn shape_line(item: &Item) -> String {
    match item {
        Item::Struct(s) => format!("struct {}{}", s.ident, fields_text(&s.fields)),
        Item::Enum(e) => {
            let variants: Vec<String> = e
                .variants
                .iter()
                .map(|v| format!("{}{}", v.ident, fields_text(&v.fields)))
                .collect();
            format!("enum {} {{ {} }}", e.ident, variants.join(", "))
        }
        _ => String::new(),
    }
}
