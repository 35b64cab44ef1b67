//! The lock file: released interface versions, which must never change.
//!
//! `upshift.lock` beside the crate's `Cargo.toml` (or the file named by
//! `#[upshift::interface(lock = "...")]`, relative to the source file) holds
//! one section per released version with its canonical schema. Building with
//! `UPSHIFT_LOCK=add` (what `upshift lock` sets) appends versions that are not locked yet; a locked
//! version is never rewritten. A locked version whose schema differs from
//! the source is a compile error that names what changed.

use std::path::{Path, PathBuf};
use upshift_schema::lock::{Compatibility, HEADER, compatibility, fingerprint, parse};
use upshift_schema::report::{self, Entry, Outcome};
use upshift_schema::shape::{self, Shape};

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;

/// Where the lock file is, given the macro's `lock = "..."` option.
pub fn path(option: Option<&str>, call_site_file: Option<PathBuf>) -> Option<PathBuf> {
    match option {
        Some(relative) => {
            // rustc names the source file as cargo passed it, relative to
            // rustc's working directory (the macro's too); the generated
            // `include_str!` resolves against the source file instead, so
            // the path must be absolute.
            let file = call_site_file?;
            let file = if file.is_absolute() {
                file
            } else {
                std::env::current_dir().ok()?.join(file)
            };
            Some(file.parent()?.join(relative))
        }
        None => Some(PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("upshift.lock")),
    }
}

/// The locked versions whose schema reaches type `name`, directly or
/// through other locked types: `Kv v3`, ``state kv v2 through `Entry` ``. Read
/// from the lock file, so a change to a type names what it would break.
pub fn users(path: &Path, name: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let (sections, _) = parse(&text);
    let mentions = |lines: &[String], ty: &str| {
        lines.iter().any(|l| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == ty)
        })
    };
    // Breadth first from `name` through the locked types that hold it.
    let mut reached = vec![name.to_string()];
    let mut users = Vec::new();
    let mut i = 0;
    while i < reached.len() {
        let ty = reached[i].clone();
        for (key, section) in &sections {
            // Types are named in the lines as written; encodings name only
            // fields and variants.
            let lines = section.written();
            // A state version declares its own types (`struct Entry { .. }`):
            // a name it declares is not the locked type of that name.
            let declares = key.starts_with("state ")
                && lines
                    .iter()
                    .any(|l| l.split([' ', '{', '(']).nth(1) == Some(ty.as_str()));
            if *key == format!("type {ty}") || declares || !mentions(&lines, &ty) {
                continue;
            }
            match key.strip_prefix("type ") {
                Some(holder) => {
                    if !reached.iter().any(|r| r == holder) {
                        reached.push(holder.to_string());
                    }
                }
                // A version's schema names `ty`, which holds `name`.
                None => {
                    let user = if ty == name {
                        key.clone()
                    } else {
                        format!("{key} through `{ty}`")
                    };
                    if !users.contains(&user) {
                        users.push(user);
                    }
                }
            }
        }
        i += 1;
    }
    users
}

/// The name a canonical line is about: a method, field or variant.
fn method_name(line: &str) -> &str {
    let rest = strip_kind(line);
    rest.split(['(', ':', ' ', '{']).next().unwrap_or(rest)
}

fn kind(line: &str) -> &str {
    line.split(' ').next().unwrap_or("item")
}

fn strip_kind(line: &str) -> &str {
    line.split_once(' ').map_or(line, |(_, rest)| rest)
}

/// What changed between a locked schema and the source, in words. A line
/// removed and one added with the same text after the name is a rename.
fn changes(locked: &[String], now: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let absent = |line: &String, other: &[String]| {
        !other.iter().any(|o| method_name(o) == method_name(line))
    };
    let removed: Vec<&String> = locked.iter().filter(|o| absent(o, now)).collect();
    let added: Vec<&String> = now.iter().filter(|n| absent(n, locked)).collect();
    let shape = |line: &str| {
        let rest = strip_kind(line);
        format!("{} {}", kind(line), &rest[method_name(line).len()..])
    };
    let mut renamed_to = Vec::new();
    for old in locked {
        if removed.contains(&old) {
            match added
                .iter()
                .find(|n| shape(n) == shape(old) && !renamed_to.contains(*n))
            {
                Some(new) => {
                    renamed_to.push(*new);
                    out.push(format!(
                        "{} `{}` was renamed to `{}`",
                        kind(old),
                        method_name(old),
                        method_name(new)
                    ));
                }
                None => out.push(format!("{} `{}` was removed", kind(old), method_name(old))),
            }
            continue;
        }
        if let Some(n) = now.iter().find(|n| method_name(n) == method_name(old))
            && n != old
        {
            out.push(format!(
                "{} `{}` changed from `{}` to `{}`",
                kind(old),
                method_name(old),
                strip_kind(old),
                strip_kind(n)
            ));
        }
    }
    for n in added {
        if !renamed_to.contains(&n) {
            out.push(format!("{} `{}` was added", kind(n), method_name(n)));
        }
    }
    // The same members in another order: postcard encodes by position
    // (variants by index, methods by index on the wire).
    if out.is_empty() && locked != now {
        let names = |lines: &[String]| {
            lines
                .iter()
                .map(|l| method_name(l).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "the {}s are in another order: was `{}`, is now `{}`",
            locked.first().map_or("member", |l| kind(l)),
            names(locked),
            names(now)
        ));
    }
    out
}

/// One element of a section whose encoding the lock records: a method's
/// argument or reply, a type, a state version's root.
pub struct Encoded {
    /// `get.key`, `get.return`, `Entry`, `Store`.
    pub label: String,
    /// An expression of type `&'static ::upshift::schema::Encoding`.
    pub encoding: TokenStream,
    /// Where a changed encoding is reported: the type as written.
    pub span: Span,
    /// The type whose values travel (a method's argument or return type, a
    /// state's root), for the generated decoding test; `None` for a type's
    /// own section (checked through the elements that hold it).
    pub ty: Option<TokenStream>,
}

/// One section to check against the lock file.
pub struct Section {
    /// The section header without its fingerprint: `Kv v1`, `type Entry`, `state kv v1`.
    pub key: String,
    /// Its canonical lines.
    pub lines: Vec<String>,
    /// Where a violation is reported.
    pub span: Span,
    /// The start of the violation message, such as "v1 of `Kv` is released".
    pub what: String,
    /// What to do instead, ending the violation message.
    pub advice: String,
    /// The elements whose encodings are locked, checked at build time by
    /// evaluating their `Schema` (the macro sees only how types are spelled).
    pub encodings: Vec<Encoded>,
}

/// Checks `sections` against the lock file at `path`: a locked section that
/// differs is an error naming what changed; unlocked sections are appended
/// when `UPSHIFT_LOCK=add` (never rewriting a locked one). When
/// `UPSHIFT_LOCK_REPORT` names a directory, the outcome of every section is
/// written there for `upshift check` and `upshift lock`.
///
/// Nothing is added while `structural` (the macro's own checks) has errors.
/// Violations are returned apart from those: the generated code is sound
/// when only the lock is violated, so the macro still emits it and the lock
/// errors are the only ones the user sees.
pub fn check_sections(structural: &Ctxt, sections: &[Section], path: Option<PathBuf>) -> Checked {
    let cx = Ctxt::default();
    let tracking = compare(structural, &cx, sections, path);
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    Checked {
        tracking,
        errors: errors.unwrap_or_default(),
    }
}

/// What [`check_sections`] gives the expansion.
pub struct Checked {
    /// Items that make the crate depend on the lock file and on both
    /// variables, so editing the lock or changing the mode rebuilds it.
    pub tracking: TokenStream,
    /// `compile_error!`s for every locked section that changed.
    pub errors: TokenStream,
}

fn compare(
    structural: &Ctxt,
    cx: &Ctxt,
    sections: &[Section],
    path: Option<PathBuf>,
) -> TokenStream {
    let Some(path) = path else {
        return tracking(None);
    };
    let adding = std::env::var("UPSHIFT_LOCK").is_ok_and(|v| v == "add");
    // Adding holds an exclusive lock on the file from reading to writing:
    // several rustc processes (a crate's lib, tests, examples) expand at once.
    let mut held = None;
    let text = if adding {
        match open_locked(&path) {
            Ok((file, text)) => {
                held = Some(file);
                Some(text).filter(|t| !t.is_empty())
            }
            Err(e) => {
                let span = sections.first().map_or_else(Span::call_site, |s| s.span);
                cx.syn_error(syn::Error::new(
                    span,
                    format!("cannot open {} to add versions: {e}", path.display()),
                ));
                return tracking(None);
            }
        }
    } else {
        std::fs::read_to_string(&path).ok()
    };
    let (locked, problems) = text.as_deref().map(parse).unwrap_or_default();
    let first_span = sections.first().map_or_else(Span::call_site, |s| s.span);
    if !problems.is_empty() {
        cx.syn_error(syn::Error::new(
            first_span,
            format!(
                "the lock file {} is malformed: {}; restore it from version control \
                 (add versions with `upshift lock`, never by hand)",
                path.display(),
                problems.join("; ")
            ),
        ));
    }
    let mode = match text.as_deref().map(compatibility).transpose() {
        Ok(mode) => mode.unwrap_or_default(),
        Err(problem) => {
            cx.syn_error(syn::Error::new(
                first_span,
                format!("the lock file {} is malformed: {problem}", path.display()),
            ));
            Compatibility::Frozen
        }
    };
    let mut additions = String::new();
    let mut report = Vec::new();
    let mut checks = TokenStream::new();
    for s in sections {
        match locked.get(&s.key) {
            Some(l) if fingerprint(&l.lines) != l.fingerprint => {
                let message = format!(
                    "section `[{}]` (line {}) does not match its fingerprint fnv1a:{:016x}: \
                     its lines were edited by hand; restore them from version control, \
                     a locked version must not change",
                    s.key, l.line, l.fingerprint
                );
                cx.syn_error(syn::Error::new(
                    s.span,
                    format!("the lock file {} is corrupt: {message}", path.display()),
                ));
                report.push(lock_entry(&path, s, Outcome::Changed, message));
            }
            Some(l) if mode == Compatibility::Wire && !l.encodings().is_empty() => {
                match wire_checks(s, &l.encodings(), &path) {
                    Ok(tokens) => {
                        report.push(lock_entry(&path, s, Outcome::Ok, String::new()));
                        checks.extend(tokens);
                    }
                    Err(message) => {
                        report.push(lock_entry(&path, s, Outcome::Changed, message.clone()));
                        cx.syn_error(syn::Error::new(s.span, message));
                    }
                }
            }
            Some(l) => {
                let (written, encoded) = (l.written(), l.encodings());
                // With encodings locked, the types are compared by what they
                // encode (at build time, below); the lines by their names.
                let (then, now) = if encoded.is_empty() {
                    (written.clone(), s.lines.clone())
                } else {
                    (
                        written.iter().map(|l| skeleton(l)).collect(),
                        s.lines.iter().map(|l| skeleton(l)).collect(),
                    )
                };
                if then == now {
                    report.push(lock_entry(&path, s, Outcome::Ok, String::new()));
                    checks.extend(encoding_checks(s, &encoded, &path));
                    checks.extend(decode_test(s, &pairs_by_label(s, &encoded)));
                    continue;
                }
                let changed = changes(&then, &now).join("; ");
                report.push(lock_entry(
                    &path,
                    s,
                    Outcome::Changed,
                    format!("{changed}; {}", s.advice),
                ));
                cx.syn_error(syn::Error::new(
                    s.span,
                    format!(
                        "{} (locked in {}) and must not change: {changed}; {}",
                        s.what,
                        path.display(),
                        s.advice
                    ),
                ));
            }
            None => {
                report.push(lock_entry(&path, s, Outcome::Unlocked, String::new()));
                additions.push_str(&format!(
                    "\n[{} fnv1a:{:016x}]\n{}\n",
                    s.key,
                    fingerprint(&s.lines),
                    s.lines.join("\n")
                ));
            }
        }
    }
    let mut exists = text.is_some();
    if let Some(file) = &mut held
        && !additions.is_empty()
        && !cx.has_errors()
        && !structural.has_errors()
    {
        let body = format!(
            "{}{additions}",
            text.clone().unwrap_or_else(|| HEADER.to_string())
        );
        match rewrite(file, &body) {
            Ok(()) => {
                exists = true;
                for entry in &mut report {
                    if let Entry::Lock { outcome, .. } = entry
                        && *outcome == Outcome::Unlocked
                    {
                        *outcome = Outcome::Added;
                    }
                }
            }
            Err(e) => cx.syn_error(syn::Error::new(
                first_span,
                format!("cannot write {}: {e}", path.display()),
            )),
        }
    }
    drop(held);
    report::write(&report);
    let tracking = tracking(exists.then_some(path.as_path()));
    // `upshift lock` runs the crate's tests in this mode: the test writes
    // the encodings the macro cannot compute into the sections.
    let fill = adding.then(|| fill_test(sections, &path));
    quote!(#tracking #checks #fill)
}

/// A canonical line without its types: `method get(key)`, `field value`,
/// `struct Entry { value, hits }`. What stays is what the names promise;
/// the types are checked by their encodings.
fn skeleton(line: &str) -> String {
    let line = line.split(" -> ").next().unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&' ') {
            // Skip the type: up to `,` or a closing bracket on this level.
            let mut depth = 0usize;
            while let Some(&n) = chars.peek() {
                match n {
                    '<' | '(' | '[' | '{' => depth += 1,
                    '>' | ')' | ']' | '}' if depth == 0 => break,
                    '>' | ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 => break,
                    _ => {}
                }
                chars.next();
            }
            if chars.peek() == Some(&'}') {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    // `Plain`, `Plain {}` and `Plain()` are one unit variant on the wire.
    if out.starts_with("variant ") {
        out = out
            .replace(" {  }", "")
            .replace(" { }", "")
            .replace("()", "");
    }
    out
}

/// For each locked encoding of `s`, a constant whose evaluation fails the
/// build, at the element's type, when today's types encode differently.
fn encoding_checks(s: &Section, locked: &[(&str, &str)], path: &Path) -> TokenStream {
    let what = format!("{} (locked in {})", s.what, path.display());
    let advice = &s.advice;
    locked
        .iter()
        .filter_map(|(label, text)| {
            let e = s.encodings.iter().find(|e| e.label == *label)?;
            let (label, text) = (*label, *text);
            let encoding = &e.encoding;
            let locked = locked_tokens(&what, label, text, advice);
            let check = quote!(::upshift::schema::encoding::mismatch(#encoding, #locked));
            Some(build_check(e.span, check))
        })
        .collect()
}

/// A constant whose evaluation fails the build, at `span`, with the message
/// `check` (an `Option<Text>` expression) gives.
fn build_check(span: Span, check: TokenStream) -> TokenStream {
    quote::quote_spanned! {span=>
        const _: () = if let ::core::option::Option::Some(message) = #check {
            ::core::panic!("{}", message.as_str())
        };
    }
}

/// An `upshift::schema::encoding::Locked` for a message.
fn locked_tokens(what: &str, label: &str, encoding: &str, advice: &str) -> TokenStream {
    quote! {
        ::upshift::schema::encoding::Locked {
            what: #what,
            label: #label,
            encoding: #encoding,
            advice: #advice,
        }
    }
}

/// A locked element and today's type for it, for the decoding test.
struct Pair {
    label: String,
    locked: String,
    ty: TokenStream,
}

/// Today's elements paired with the locked ones of the same label.
fn pairs_by_label(s: &Section, locked: &[(&str, &str)]) -> Vec<Pair> {
    s.encodings
        .iter()
        .filter_map(|e| {
            let ty = e.ty.clone()?;
            let (_, text) = locked.iter().find(|(label, _)| *label == e.label)?;
            Some(Pair {
                label: e.label.clone(),
                locked: (*text).to_string(),
                ty,
            })
        })
        .collect()
}

/// The test that draws random byte strings from each locked element's
/// encoding and checks that today's type reads them as the same values and
/// writes them back as the same bytes (`upshift::schema::check_decoding`).
fn decode_test(s: &Section, pairs: &[Pair]) -> TokenStream {
    if pairs.is_empty() {
        return TokenStream::new();
    }
    let test = quote::format_ident!("__upshift_decode_{}", ident_text(&s.key));
    let what = &s.what;
    let elements = pairs.iter().map(|p| {
        let (label, locked, ty) = (&p.label, &p.locked, &p.ty);
        quote!(::upshift::schema::element::<#ty>(#label, #locked))
    });
    quote! {
        #[cfg(test)]
        #[::core::prelude::v1::test]
        fn #test() {
            ::upshift::schema::check_decoding(#what, &[#(#elements),*]);
        }
    }
}

/// `kv_v1` for `Kv v1`: a section key as part of an identifier.
fn ident_text(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A section's elements by message: a method's arguments and its return
/// (labels `get.key`, `get.return`), or one element (`Entry`, `Store`).
struct Message<T> {
    name: String,
    args: Vec<(String, T)>,
    value: Option<T>,
}

fn messages<T>(items: impl IntoIterator<Item = (String, T)>) -> Vec<Message<T>> {
    let mut out: Vec<Message<T>> = Vec::new();
    for (label, item) in items {
        let (name, part) = match label.split_once('.') {
            Some((name, part)) => (name.to_string(), Some(part.to_string())),
            None => (label.clone(), None),
        };
        if out.last().is_none_or(|m| m.name != name) {
            out.push(Message {
                name,
                args: Vec::new(),
                value: None,
            });
        }
        let Some(m) = out.last_mut() else { continue };
        match part {
            Some(arg) if arg != "return" => m.args.push((arg, item)),
            _ => m.value = Some(item),
        }
    }
    out
}

/// `compatibility wire`: per message, a constant whose evaluation fails the
/// build when today's types do not read what the released version writes
/// (`upshift::schema::compatible::readable`), and the decoding test that
/// backs it; or the message of an error the macro can tell by itself.
fn wire_checks(s: &Section, locked: &[(&str, &str)], path: &Path) -> Result<TokenStream, String> {
    let what = format!("{} (locked in {})", s.what, path.display());
    let advice = &s.advice;
    let mut old = Vec::new();
    for (label, text) in locked {
        let shape = shape::parse(text).map_err(|e| {
            format!(
                "the lock file {} is malformed: the encoding of `{label}` in `[{}]`: {e}; \
                 restore it from version control",
                path.display(),
                s.key
            )
        })?;
        old.push((label.to_string(), (shape, text.to_string())));
    }
    let old = messages(old);
    let new = messages(s.encodings.iter().map(|e| (e.label.clone(), e)));
    let names = |ms: &[String]| ms.join(", ");
    let (old_names, new_names): (Vec<String>, Vec<String>) = (
        old.iter().map(|m| m.name.clone()).collect(),
        new.iter().map(|m| m.name.clone()).collect(),
    );
    // Calls name a method by its index: the same count, and no name at
    // another index (a swap of two alike methods would reach the wrong one).
    let moved = old_names.iter().enumerate().find(|(i, n)| {
        new_names
            .iter()
            .position(|m| m == *n)
            .is_some_and(|j| j != *i)
    });
    if old.len() != new.len() || moved.is_some() {
        return Err(format!(
            "{what} and must keep its methods in place (compatibility wire): it had `{}`, has `{}`; \
             a call names its method by position, so a released version keeps as many methods, \
             each where it was (a rename is fine); {advice}",
            names(&old_names),
            names(&new_names)
        ));
    }
    let encoding = quote!(::upshift::schema::Encoding);
    let field = quote!(::upshift::schema::encoding::Field);
    let mut tokens = TokenStream::new();
    let mut pairs = Vec::new();
    for (o, n) in old.iter().zip(&new) {
        let mut checks = Vec::new();
        if !(o.args.is_empty() && n.args.is_empty()) {
            let then = o.args.iter().map(|(name, (shape, _))| {
                let e = shape_tokens(shape);
                quote!(#field { name: #name, encoding: #e })
            });
            let now = n.args.iter().map(|(name, e)| {
                let e = &e.encoding;
                quote!(#field { name: #name, encoding: #e })
            });
            let span = n.args.first().map_or(s.span, |(_, e)| e.span);
            checks.push((
                n.name.clone(),
                quote!(&#encoding::Struct(&[#(#then),*])),
                quote!(&#encoding::Struct(&[#(#now),*])),
                span,
            ));
            if o.args.len() == n.args.len() {
                pairs.extend(o.args.iter().zip(&n.args).filter_map(
                    |((_, (_, text)), (name, e))| {
                        Some(Pair {
                            label: format!("{}.{name}", n.name),
                            locked: text.clone(),
                            ty: e.ty.clone()?,
                        })
                    },
                ));
            } else if let Some(tys) = n
                .args
                .iter()
                .map(|(_, e)| e.ty.clone())
                .collect::<Option<Vec<_>>>()
            {
                let texts: Vec<&str> = o.args.iter().map(|(_, (_, t))| t.as_str()).collect();
                pairs.push(Pair {
                    label: format!("{} arguments", n.name),
                    locked: format!("({})", texts.join(", ")),
                    ty: quote!((#(#tys,)*)),
                });
            }
        }
        match (&o.value, &n.value) {
            (Some((shape, text)), Some(e)) => {
                let label = if n.args.is_empty() && !e.label.contains('.') {
                    e.label.clone()
                } else {
                    format!("{}.return", n.name)
                };
                checks.push((
                    label.clone(),
                    shape_tokens(shape),
                    e.encoding.clone(),
                    e.span,
                ));
                if let Some(ty) = e.ty.clone() {
                    pairs.push(Pair {
                        label,
                        locked: text.clone(),
                        ty,
                    });
                }
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "{what} and must not change (compatibility wire): `{}` is no longer the same kind of element; {advice}",
                    n.name
                ));
            }
        }
        for (label, then, now, span) in checks {
            let locked = locked_tokens(&what, &label, "", advice);
            let check = quote! {{
                const THEN: &'static #encoding = #then;
                const NOW: &'static #encoding = #now;
                ::upshift::schema::compatible::readable(THEN, NOW, #locked)
            }};
            tokens.extend(build_check(span, check));
        }
    }
    tokens.extend(decode_test(s, &pairs));
    Ok(tokens)
}

/// A locked encoding as an expression of type `&'static Encoding`.
fn shape_tokens(shape: &Shape) -> TokenStream {
    let e = quote!(::upshift::schema::Encoding);
    let field = quote!(::upshift::schema::encoding::Field);
    let fields = |fs: &[(String, Shape)]| {
        let fs = fs.iter().map(|(name, s)| {
            let s = shape_tokens(s);
            quote!(#field { name: #name, encoding: #s })
        });
        quote!(&[#(#fs),*])
    };
    match shape {
        Shape::Unit => quote!(&#e::Unit),
        Shape::Scalar(scalar) => {
            // `Scalar`'s variants are named as `Encoding`'s.
            let variant = quote::format_ident!("{scalar:?}");
            quote!(&#e::#variant)
        }
        Shape::Option(t) => {
            let t = shape_tokens(t);
            quote!(&#e::Option(#t))
        }
        Shape::Seq(t) => {
            let t = shape_tokens(t);
            quote!(&#e::Seq(#t))
        }
        Shape::Map(k, v) => {
            let (k, v) = (shape_tokens(k), shape_tokens(v));
            quote!(&#e::Map(#k, #v))
        }
        Shape::Array(t, n) => {
            let t = shape_tokens(t);
            quote!(&#e::Array(#t, #n))
        }
        Shape::Tuple(items) => {
            let items = items.iter().map(shape_tokens);
            quote!(&#e::Tuple(&[#(#items),*]))
        }
        Shape::Struct(fs) => {
            let fs = fields(fs);
            quote!(&#e::Struct(#fs))
        }
        Shape::Enum(vs) => {
            let vs = vs.iter().map(|(name, fs)| {
                let fs = fields(fs);
                quote!(::upshift::schema::encoding::Variant { name: #name, fields: #fs })
            });
            quote!(&#e::Enum(&[#(#vs),*]))
        }
        Shape::Recurse => quote!(&#e::Recurse),
        Shape::Param(i) => quote!(&#e::Param(#i)),
        Shape::Invalid => quote!(&#e::Invalid),
    }
}

/// The test `upshift lock` runs: it writes each section's encodings into
/// the lock file (where they are missing) and checks those already there.
fn fill_test(sections: &[Section], path: &Path) -> TokenStream {
    let Some(first) = sections.first() else {
        return TokenStream::new();
    };
    let test = quote::format_ident!("__upshift_lock_{}", ident_text(&first.key));
    let path = path.display().to_string();
    let sections = sections.iter().map(|s| {
        let key = &s.key;
        let labels = s.encodings.iter().map(|e| &e.label);
        let encodings = s.encodings.iter().map(|e| &e.encoding);
        quote!((#key, &[#((#labels, #encodings)),*]))
    });
    quote! {
        #[cfg(test)]
        #[::core::prelude::v1::test]
        fn #test() {
            ::upshift::schema::fill_lock(#path, &[#(#sections),*]);
        }
    }
}

/// Opens (creating) the lock file with an exclusive lock, and reads it.
fn open_locked(path: &Path) -> std::io::Result<(std::fs::File, String)> {
    use std::io::Read;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok((file, text))
}

/// Replaces the held file's content, and syncs it.
fn rewrite(file: &mut std::fs::File, body: &str) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(body.as_bytes())?;
    file.sync_all()
}

/// A section's outcome as the CLI reads it.
fn lock_entry(path: &Path, s: &Section, outcome: Outcome, detail: String) -> Entry {
    Entry::Lock {
        lock: path.to_path_buf(),
        key: s.key.clone(),
        outcome,
        detail,
    }
}

/// Items that make the expanding crate depend on the lock file (when it
/// exists) and on `UPSHIFT_LOCK` / `UPSHIFT_LOCK_REPORT`: rustc records them
/// in the crate's dep-info, and cargo rebuilds when any of them changes.
fn tracking(lock: Option<&Path>) -> TokenStream {
    let include = lock.map(|p| {
        let p = p.display().to_string();
        quote!(
            const _: &::core::primitive::str = ::core::include_str!(#p);
        )
    });
    quote! {
        #include
        const _: ::core::option::Option<&::core::primitive::str> = ::core::option_env!("UPSHIFT_LOCK");
        const _: ::core::option::Option<&::core::primitive::str> =
            ::core::option_env!("UPSHIFT_LOCK_REPORT");
    }
}

#[cfg(test)]
mod tests {

    /// Property-test cases: `PROPTEST_CASES` when set (a deeper local run, say
    /// `PROPTEST_CASES=1000000`), else `default`, the budget the suite keeps.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
    use proptest::prelude::*;

    use super::{HEADER, changes, fingerprint, parse};

    /// A lock file as `upshift lock` writes it.
    fn render(sections: &[(String, Vec<String>)]) -> String {
        let mut text = HEADER.to_string();
        for (key, lines) in sections {
            text.push_str(&format!(
                "\n[{key} fnv1a:{:016x}]\n{}\n",
                fingerprint(lines),
                lines.join("\n")
            ));
        }
        text
    }

    fn line() -> impl Strategy<Value = String> {
        ("(method|field|variant) [a-z]{1,8}", "[A-Za-z<>(): ,]{0,20}")
            .prop_map(|(head, rest)| format!("{head}{rest}").trim().to_string())
    }

    /// A schema as the macros produce one: each name once.
    fn schema() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_map(
            "[a-z]{1,8}",
            (
                "(method|field|variant)",
                "(\\([a-z: ,<>A-Z]{0,12}\\)|: [A-Z][a-z]{0,6}|)",
            ),
            0..8,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(name, (kind, rest))| format!("{kind} {name}{rest}"))
                .collect()
        })
    }

    /// Encodings as `render` writes them.
    fn shape_strategy() -> impl Strategy<Value = upshift_schema::shape::Shape> {
        use upshift_schema::shape::{Scalar, Shape};
        let name = "[a-z][a-z0-9_]{0,6}|[0-9]";
        let leaf = prop_oneof![
            Just(Shape::Unit),
            Just(Shape::Recurse),
            Just(Shape::Invalid),
            (0usize..3).prop_map(Shape::Param),
            (0..Scalar::ALL.len()).prop_map(|i| Shape::Scalar(Scalar::ALL[i].0)),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            let fields = proptest::collection::vec((name, inner.clone()), 0..4);
            prop_oneof![
                inner.clone().prop_map(|t| Shape::Option(Box::new(t))),
                inner.clone().prop_map(|t| Shape::Seq(Box::new(t))),
                (inner.clone(), inner.clone())
                    .prop_map(|(k, v)| Shape::Map(Box::new(k), Box::new(v))),
                (inner.clone(), 0usize..40).prop_map(|(t, n)| Shape::Array(Box::new(t), n)),
                // `()` is the unit; a tuple has at least one item.
                proptest::collection::vec(inner.clone(), 1..4).prop_map(Shape::Tuple),
                fields.clone().prop_map(Shape::Struct),
                proptest::collection::vec(("[A-Z][a-z]{0,5}", fields), 0..4).prop_map(Shape::Enum),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(500)))]

        #[test]
        fn parsing_never_panics(text in "(\\PC|\n|\\[|\\]){0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn encoding_parsing_never_panics(text in "([a-z0-9$?;:,<>(){}\\[\\] ]|option<|seq<|map<|enum ){0,200}") {
            let _ = upshift_schema::shape::parse(&text);
        }

        #[test]
        fn encodings_are_read_back_as_written(shape in shape_strategy()) {
            let text = shape.to_string();
            let parsed = upshift_schema::shape::parse(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&shape), "{}", text);
            // And the constant the macro makes of it is valid Rust.
            prop_assert!(syn::parse2::<syn::Expr>(super::shape_tokens(&shape)).is_ok());
        }

        #[test]
        fn what_is_written_is_read_back(
            sections in proptest::collection::btree_map(
                "(type [A-Z][a-z]{0,6}|[A-Z][a-z]{0,6} v[1-9])",
                proptest::collection::vec(line(), 0..6),
                0..5,
            )
        ) {
            let sections: Vec<(String, Vec<String>)> = sections.into_iter().collect();
            let (parsed, problems) = parse(&render(&sections));
            prop_assert!(problems.is_empty(), "{problems:?}");
            prop_assert_eq!(parsed.len(), sections.len());
            for (key, lines) in &sections {
                let locked = &parsed[key];
                prop_assert_eq!(&locked.lines, lines);
                prop_assert_eq!(locked.fingerprint, fingerprint(lines));
            }
        }

        #[test]
        fn a_schema_compared_with_itself_has_no_changes(lines in schema()) {
            prop_assert!(changes(&lines, &lines).is_empty());
        }

        #[test]
        fn every_difference_is_named(old in schema(), new in schema()) {
            let found = changes(&old, &new);
            prop_assert_eq!(found.is_empty(), old == new, "{:?}", found);
        }
    }

    #[test]
    fn a_type_names_the_locked_versions_that_reach_it() {
        let dir = std::env::temp_dir().join(format!("upshift-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("upshift.lock");
        let sections = [
            ("Kv v1", vec!["method get(key: String) -> Option<String>"]),
            ("Kv v3", vec!["method get(key: String) -> Option<Entry>"]),
            ("state kv v3", vec!["struct Store { expiry: Expiry }"]),
            // Declares its own `Entry`: not a user of the locked one.
            (
                "state kv v4",
                vec![
                    "struct Store { items: Vec<Entry> }",
                    "struct Entry { n: u8 }",
                ],
            ),
            (
                "type Entry",
                vec!["field value: String", "field expiry: Expiry"],
            ),
            (
                "type Expiry",
                vec!["variant Never", "variant AtUnixMs(0: u64)"],
            ),
            ("type EntryKind", vec!["variant Plain"]),
        ];
        let sections: Vec<(String, Vec<String>)> = sections
            .into_iter()
            .map(|(k, l)| (k.to_string(), l.into_iter().map(String::from).collect()))
            .collect();
        std::fs::write(&path, render(&sections)).expect("write");
        assert_eq!(super::users(&path, "Entry"), ["Kv v3"]);
        assert_eq!(
            super::users(&path, "Expiry"),
            ["state kv v3", "Kv v3 through `Entry`"]
        );
        assert!(super::users(&path, "EntryKind").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_fingerprint_is_fixed() {
        // Released lock files hold these values: the hash must never change.
        let lines = [
            "method get(key: String) -> Option<String>".to_string(),
            "method put(key: String, value: String) -> ()".to_string(),
        ];
        assert_eq!(fingerprint(&lines), 0x0d75_2f7d_e384_81f7);
    }

    #[test]
    fn changes_name_renames_additions_and_removals() {
        let old: Vec<String> = ["field a: u8", "field b: String", "field c: u64"]
            .map(String::from)
            .to_vec();
        let new: Vec<String> = ["field a: u16", "field bb: String", "field d: bool"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            changes(&old, &new),
            [
                "field `a` changed from `a: u8` to `a: u16`",
                "field `b` was renamed to `bb`",
                "field `c` was removed",
                "field `d` was added",
            ]
        );
    }
}
