//! `upshift new-version`: adds the next version to a service crate laid out
//! as `upshift new` writes it. The newest interface and state versions are
//! copied whole as the next one, so the crate builds as it did; then each
//! change the developer makes to the copy makes the compiler ask for what
//! it needs — in the past and future SO skeletons written here, or as a
//! state rule. The object, its journaled change, `Follows` and the stage
//! of the next version are copied and renamed when the crate has them
//! under the scaffold's names (`ObjectVN`, `ChangeVN`).

use std::path::Path;

use proc_macro2::{LineColumn, TokenStream};
use quote::ToTokens;
use syn::{Attribute, Fields, Item, ItemMod};

use crate::Failure;

/// `upshift new-version`: rewrites `dir/src/lib.rs` in place.
pub fn run(dir: &Path) -> Result<(), Failure> {
    let path = dir.join("src/lib.rs");
    let fail = |what: String| Failure(what, 2);
    let source = std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("read {}: {e}", path.display())))?;
    let added = add_version(&source).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    // Written beside and renamed: an interrupted run leaves the file whole.
    let tmp = path.with_extension("rs.new");
    std::fs::write(&tmp, &added.source)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| fail(format!("write {}: {e}", path.display())))?;
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(&path)
        .status();
    let (old, new) = (added.version, added.version + 1);
    println!("added v{new} to {} as a copy of v{old}:", path.display());
    for done in &added.done {
        println!("  {done}");
    }
    for todo in &added.todo {
        println!("  to do: {todo}");
    }
    println!(
        "now change v{new} (interface and state), build, and write what the compiler asks for"
    );
    Ok(())
}

/// What `add_version` did.
#[derive(Debug)]
pub struct Added {
    /// The new text of the file.
    pub source: String,
    /// The version copied (the new one is `version + 1`).
    pub version: u32,
    /// What was added, a line each.
    pub done: Vec<String>,
    /// What could not be, and is the developer's to write.
    pub todo: Vec<String>,
}

/// Text inserted at a byte offset of the source.
struct Insert {
    at: usize,
    text: String,
}

/// Adds the next version to `source` (a crate's `src/lib.rs`).
pub fn add_version(source: &str) -> Result<Added, String> {
    let file = syn::parse_file(source).map_err(|e| {
        let at = e.span().start();
        format!(
            "does not parse as Rust (line {}, column {}: {e}); fix it first",
            at.line,
            at.column + 1
        )
    })?;
    let text = Text::new(source);
    let interface = find_mod(&file.items, "interface").ok_or(
        "no `#[upshift::interface] mod` at the top level of src/lib.rs; `upshift new-version` \
         works on crates laid out as `upshift new` writes them",
    )?;
    let state = find_mod(&file.items, "state");
    let n = newest(interface).ok_or("the interface module declares no `#[version(N)]` item")?;
    if let Some(state) = state
        && newest(state) != Some(n)
    {
        return Err(format!(
            "the interface's newest version is v{n} but the state's is {}: \
             bring them to the same version first",
            newest(state).map_or("none".into(), |v| format!("v{v}"))
        ));
    }
    let next = n.checked_add(1).ok_or("no version follows u32::MAX")?;
    let mut inserts = Vec::new();
    let mut done = Vec::new();
    let mut todo = Vec::new();

    for (module, what) in [(Some(interface), "interface"), (state, "state")] {
        let Some(module) = module else {
            continue;
        };
        let (copies, end) = copy_version(&text, module, n)?;
        inserts.push(Insert {
            at: end,
            text: copies.join(""),
        });
        done.push(format!(
            "{what}: v{next} ({} item{})",
            copies.len(),
            if copies.len() == 1 { "" } else { "s" }
        ));
    }

    // The crate's own items of version n, under the scaffold's names.
    let object = format!("ObjectV{n}");
    let change = format!("ChangeV{n}");
    let mut top = Vec::new();
    // The state's root type, from `impl Journaled for state::vN::Root`.
    let mut root: Option<String> = None;
    let mut change_enum = None;
    for item in &file.items {
        let copy = match item {
            Item::Struct(s) if s.ident == object => true,
            Item::Enum(e) if e.ident == change => {
                change_enum = Some(e);
                true
            }
            Item::Impl(i) => {
                let self_ty = i.self_ty.to_token_stream().to_string().replace(' ', "");
                let for_object = self_ty == object;
                let state_root = self_ty
                    .strip_prefix(&format!("state::v{n}::"))
                    .map(str::to_string);
                let is_journaled = i.trait_.as_ref().is_some_and(|(_, path, _)| {
                    path.segments.last().is_some_and(|s| s.ident == "Journaled")
                });
                let journaled = state_root.is_some() && is_journaled;
                if journaled {
                    root = state_root;
                }
                for_object || journaled
            }
            _ => false,
        };
        if copy {
            top.push(item);
        }
    }
    if top.is_empty() {
        todo.push(format!(
            "no `{object}` or `{change}` here: write the v{next} object and its stage yourself"
        ));
    } else {
        let mut copies = String::new();
        for item in &top {
            let (start, end) = text.range(item);
            copies.push_str("\n\n");
            copies.push_str(&rename(&source[start..end], n));
        }
        // After everything of the versions before (their `Follows` and SO
        // impls too): just before `stages()`, else after the last copied item.
        let stages_at = file.items.iter().find_map(|i| match i {
            Item::Fn(f) if f.sig.ident == "stages" => Some(text.range(f).0),
            _ => None,
        });
        let end = top.iter().map(|i| text.range(i).1).max().unwrap_or(0);
        if let (Some(root), Some(change_enum)) = (&root, change_enum) {
            copies.push_str(&follows(root, change_enum, n));
            done.push(format!(
                "`ChangeV{next}`, its `Journaled` and `Follows` impls (v{next} state follows \
                 v{n}'s changes, so the upgrade runs in the background)"
            ));
        }
        copies.push_str(&so_skeletons(n));
        done.push(format!(
            "`ObjectV{next}` and the SO skeletons the compiler will fill in \
             (`v{n}::Past`, `v{next}::Future`)"
        ));
        inserts.push(match stages_at {
            Some(at) if at > end => Insert {
                at,
                text: format!("{}\n\n", copies.trim_start()),
            },
            _ => Insert {
                at: end,
                text: copies,
            },
        });
    }

    // The stage of the new version, last in `stages()`.
    match (
        stage_insert(&text, &file.items, next, root.as_deref()),
        &root,
    ) {
        (Some(insert), Some(_)) if !top.is_empty() => {
            inserts.push(insert);
            done.push(format!("a v{next} stage in `stages()`"));
        }
        _ => todo.push(format!(
            "add the v{next} stage to `stages()` (a `durable_stage` of `ObjectV{next}`, \
             `.following()`)"
        )),
    }

    inserts.sort_by_key(|i| i.at);
    let mut out = String::with_capacity(source.len() * 2);
    let mut from = 0;
    for insert in &inserts {
        out.push_str(&source[from..insert.at]);
        out.push_str(&insert.text);
        from = insert.at;
    }
    out.push_str(&source[from..]);
    Ok(Added {
        source: out,
        version: n,
        done,
        todo,
    })
}

/// The top-level module carrying `#[upshift::<kind>]` (or `#[<kind>]`).
fn find_mod<'a>(items: &'a [Item], kind: &str) -> Option<&'a ItemMod> {
    items.iter().find_map(|item| match item {
        Item::Mod(m)
            if m.content.is_some()
                && m.attrs
                    .iter()
                    .any(|a| a.path().segments.last().is_some_and(|s| s.ident == kind)) =>
        {
            Some(m)
        }
        _ => None,
    })
}

/// `N` of an item's `#[version(N)]`, with the attribute.
fn version_of(attrs: &[Attribute]) -> Option<(u32, &Attribute)> {
    attrs.iter().find_map(|a| {
        if !a.path().is_ident("version") {
            return None;
        }
        let lit: syn::LitInt = a.parse_args().ok()?;
        Some((lit.base10_parse().ok()?, a))
    })
}

fn attrs_of(item: &Item) -> &[Attribute] {
    match item {
        Item::Trait(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        _ => &[],
    }
}

/// The newest version a module declares.
fn newest(module: &ItemMod) -> Option<u32> {
    let (_, items) = module.content.as_ref()?;
    items
        .iter()
        .filter_map(|i| version_of(attrs_of(i)).map(|(v, _)| v))
        .max()
}

/// The module's items of version `n`, copied as `n + 1`, and the offset
/// after the last of them.
fn copy_version(text: &Text<'_>, module: &ItemMod, n: u32) -> Result<(Vec<String>, usize), String> {
    let items = module.content.as_ref().map_or(&[][..], |(_, items)| items);
    let mut copies = Vec::new();
    let mut end = 0;
    for item in items {
        let Some((v, attr)) = version_of(attrs_of(item)) else {
            continue;
        };
        if v != n {
            continue;
        }
        let (start, stop) = text.range(item);
        let (attr_start, attr_end) = text.range(attr);
        let copy = format!(
            "{}#[version({})]{}",
            &text.source[start..attr_start],
            n + 1,
            &text.source[attr_end..stop]
        );
        // "v1: named counters." becomes "v2: named counters.": say what
        // changes when changing it.
        let copy = copy.replacen(&format!("v{n}:"), &format!("v{}:", n + 1), 1);
        copies.push(format!("\n\n{}{copy}", indent_of(text.source, start)));
        end = end.max(stop);
    }
    if copies.is_empty() {
        return Err(format!("no item of version {n} in `mod {}`", module.ident));
    }
    Ok((copies, end))
}

/// The whitespace before `at` on its line.
fn indent_of(source: &str, at: usize) -> &str {
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &source[line_start..at];
    if prefix.chars().all(char::is_whitespace) {
        prefix
    } else {
        ""
    }
}

/// `text` with version `n`'s names moved to `n + 1`: `ObjectVn`,
/// `ChangeVn`, and `vn` as a word (`state::vn::`, "the vn object").
fn rename(text: &str, n: u32) -> String {
    let next = n + 1;
    let text = text
        .replace(&format!("ObjectV{n}"), &format!("ObjectV{next}"))
        .replace(&format!("ChangeV{n}"), &format!("ChangeV{next}"));
    let word = format!("v{n}");
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(&word) {
        let before = text[..i].chars().last();
        let after = text[i + word.len()..].chars().next();
        let whole = !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_ascii_digit());
        if whole {
            out.push_str(&text[last..i]);
            out.push_str(&format!("v{next}"));
            last = i + word.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// `impl Follows` for the new state: each change of version `n` applied
/// as the same change of `n + 1` (the developer adapts it when the state
/// changes; the generated conformance tests check it).
fn follows(root: &str, change: &syn::ItemEnum, n: u32) -> String {
    let next = n + 1;
    let arms: Vec<String> = change
        .variants
        .iter()
        .map(|v| {
            let name = &v.ident;
            match &v.fields {
                Fields::Named(f) => {
                    let names: Vec<String> = f
                        .named
                        .iter()
                        .filter_map(|f| f.ident.as_ref().map(ToString::to_string))
                        .collect();
                    let names = names.join(", ");
                    format!(
                        "ChangeV{n}::{name} {{ {names} }} => ChangeV{next}::{name} {{ {names} }},"
                    )
                }
                Fields::Unnamed(f) => {
                    let names: Vec<String> =
                        (0..f.unnamed.len()).map(|i| format!("f{i}")).collect();
                    let names = names.join(", ");
                    format!("ChangeV{n}::{name}({names}) => ChangeV{next}::{name}({names}),")
                }
                Fields::Unit => format!("ChangeV{n}::{name} => ChangeV{next}::{name},"),
            }
        })
        .collect();
    format!(
        r#"

/// While the node prepares v{next} in the background, v{n} keeps serving:
/// each change v{n} journals is applied to the v{next} state too. Keep
/// `transform(apply(s, c)) == follow(transform(s), c)`.
impl upshift::state::Follows for state::v{next}::{root} {{
    type Previous = state::v{n}::{root};

    fn follow(&mut self, change: ChangeV{n}) {{
        let change = match change {{
            {arms}
        }};
        upshift::state::Journaled::apply(self, change);
    }}
}}"#,
        arms = arms.join("\n            ")
    )
}

/// The SO impls the compiler asks for once v{n+1} exists: empty while the
/// versions are alike; each method changed later is named by the compiler.
fn so_skeletons(n: u32) -> String {
    let next = n + 1;
    format!(
        r#"

/// v{n} callers on a node that runs v{next}. Write here each v{n} method
/// whose signature v{next} changed or dropped (the compiler names them).
impl<N: interface::v{next}::Interface> interface::v{n}::Past for interface::v{n}::PastSo<N> {{}}

/// v{next} callers on a node that still runs v{n}. Write here each v{next}
/// method v{n} does not have as it is (the compiler names them); refuse
/// with `upshift::Disallowed` what v{n} cannot do.
impl<P: interface::v{n}::Interface> interface::v{next}::Future for interface::v{next}::FutureSo<P> {{}}"#
    )
}

/// The new stage, before the closing `]` of the `vec![…]` that `stages()`
/// returns.
fn stage_insert(text: &Text<'_>, items: &[Item], next: u32, root: Option<&str>) -> Option<Insert> {
    let root = root?;
    let stages = items.iter().find_map(|i| match i {
        Item::Fn(f) if f.sig.ident == "stages" => Some(f),
        _ => None,
    })?;
    let mac = stages.block.stmts.iter().rev().find_map(|s| match s {
        syn::Stmt::Expr(syn::Expr::Macro(m), None) => Some(&m.mac),
        syn::Stmt::Macro(m) => Some(&m.mac),
        _ => None,
    })?;
    if !mac.path.is_ident("vec") {
        return None;
    }
    let syn::MacroDelimiter::Bracket(bracket) = &mac.delimiter else {
        return None;
    };
    let close = text.offset(bracket.span.close().start());
    let before = text.source[..close].trim_end();
    let comma = if before.ends_with(',') || before.ends_with('[') {
        ""
    } else {
        ","
    };
    Some(Insert {
        at: close,
        text: format!(
            "{comma} Box::new(durable_stage(|s: Durable<state::v{next}::{root}>| {{ \
             interface::v{next}::service_with_future(ObjectV{next} {{ state: s }}) }}).following())"
        ),
    })
}

/// The source with its line starts, to turn token positions into offsets.
struct Text<'a> {
    source: &'a str,
    lines: Vec<usize>,
}

impl<'a> Text<'a> {
    fn new(source: &'a str) -> Self {
        let mut lines = vec![0];
        lines.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Text { source, lines }
    }

    /// The byte offset of a line (1-based) and column (in characters).
    fn offset(&self, at: LineColumn) -> usize {
        let start = self
            .lines
            .get(at.line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let line = &self.source[start..];
        start
            + line
                .char_indices()
                .nth(at.column)
                .map_or(line.len(), |(i, _)| i)
    }

    /// The bytes an item spans, its attributes and doc comments included.
    fn range(&self, item: &impl ToTokens) -> (usize, usize) {
        let tokens: Vec<_> = TokenStream::into_iter(item.to_token_stream()).collect();
        let start = tokens.first().map_or(0, |t| self.offset(t.span().start()));
        let end = tokens.last().map_or(0, |t| self.offset(t.span().end()));
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_whole_version_words_only() {
        assert_eq!(
            rename(
                "state::v1::X, ObjectV1, ChangeV1, v10, xv1, the v1 object",
                1
            ),
            "state::v2::X, ObjectV2, ChangeV2, v10, xv1, the v2 object"
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_saying_why() {
        let e = add_version("fn main() {").expect_err("does not parse");
        assert!(e.starts_with("does not parse as Rust (line 1"), "{e}");
        let e = add_version("pub mod other {}").expect_err("no interface");
        assert!(e.contains("no `#[upshift::interface] mod`"), "{e}");
        let behind = r#"
            #[upshift::interface]
            pub mod interface {
                #[version(1)] pub trait S { async fn f(&self); }
                #[version(2)] pub trait S { async fn f(&self); }
            }
            #[upshift::state(name = "s")]
            pub mod state {
                #[version(1)] pub struct Root { pub a: u64 }
            }
        "#;
        let e = add_version(behind).expect_err("versions differ");
        assert!(
            e.contains("the interface's newest version is v2 but the state's is v1"),
            "{e}"
        );
    }

    /// A crate not laid out by `upshift new`: the interface and state are
    /// copied and the SOs are the developer's, as the output says.
    #[test]
    fn copies_the_versions_of_any_crate_and_says_what_is_left() {
        let source = r#"
#[upshift::interface(name = "acme.Store")]
pub mod interface {
    /// v1: a store.
    #[version(1)]
    pub trait Store {
        async fn get(&self, key: String) -> Option<String>;
    }

    /// v1: an entry.
    #[version(1)]
    #[derive(Debug, Clone)]
    pub struct Entry {
        pub value: String,
    }
}
"#;
        let added = add_version(source).expect("added");
        assert_eq!(added.version, 1);
        assert!(
            added
                .source
                .contains("/// v2: a store.\n    #[version(2)]\n    pub trait Store {")
        );
        assert!(added.source.contains("/// v2: an entry.\n    #[version(2)]\n    #[derive(Debug, Clone)]\n    pub struct Entry {"));
        assert_eq!(
            added.source.matches("#[version(1)]").count(),
            2,
            "v1 unchanged"
        );
        assert!(
            added
                .todo
                .iter()
                .any(|t| t.contains("write the v2 object and its stage yourself")),
            "{:?}",
            added.todo
        );
        syn::parse_file(&added.source).expect("still Rust");
    }
}
