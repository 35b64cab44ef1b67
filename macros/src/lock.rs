//! The lock file: released interface versions, which must never change.
//!
//! `upshift.lock` beside the crate's `Cargo.toml` (or the file named by
//! `#[upshift::interface(lock = "...")]`, relative to the source file) holds
//! one section per released version with its canonical schema. Building with
//! `UPSHIFT_LOCK=add` appends versions that are not locked yet; a locked
//! version is never rewritten. A locked version whose schema differs from
//! the source is a compile error that names what changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proc_macro2::Span;

use crate::ctxt::Ctxt;
use crate::model::{Service, Version};

const HEADER: &str = "# upshift lock file: the schema of every released interface version.\n\
# Check it in. A locked version must never change: declare a new version instead.\n\
# Add new versions with `UPSHIFT_LOCK=add cargo build`; locked ones are never rewritten.\n";

/// The canonical schema of a version: one line per method.
pub fn canonical(v: &Version) -> Vec<String> {
    v.methods
        .iter()
        .map(|m| {
            let args: Vec<String> = m
                .args
                .iter()
                .map(|a| format!("{}: {}", a.ident, a.ty_text))
                .collect();
            format!("method {}({}) -> {}", m.ident, args.join(", "), m.ret_text)
        })
        .collect()
}

/// FNV-1a over the canonical lines: stable across builds and platforms.
pub fn fingerprint(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lines.join("\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where the lock file is, given the macro's `lock = "..."` option.
pub fn path(option: Option<&str>, call_site_file: Option<PathBuf>) -> Option<PathBuf> {
    match option {
        Some(relative) => Some(call_site_file?.parent()?.join(relative)),
        None => Some(PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("upshift.lock")),
    }
}

/// Sections of a lock file, by their header without the fingerprint
/// (`Kv v1`, `type Entry`, `state kv v1`), to their canonical lines.
fn parse(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let words: Vec<&str> = header
                .split_whitespace()
                .filter(|w| !w.starts_with("fnv1a:"))
                .collect();
            current = (words.len() >= 2).then(|| words.join(" "));
            if let Some(key) = &current {
                out.insert(key.clone(), Vec::new());
            }
        } else if let Some(key) = &current
            && let Some(lines) = out.get_mut(key)
        {
            lines.push(line.to_string());
        }
    }
    out
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

/// What changed between a locked schema and the source, in words.
fn changes(locked: &[String], now: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for old in locked {
        match now.iter().find(|n| method_name(n) == method_name(old)) {
            None => out.push(format!("{} `{}` was removed", kind(old), method_name(old))),
            Some(n) if n != old => out.push(format!(
                "{} `{}` changed from `{}` to `{}`",
                kind(old),
                method_name(old),
                strip_kind(old),
                strip_kind(n)
            )),
            Some(_) => {}
        }
    }
    for n in now {
        if !locked.iter().any(|o| method_name(o) == method_name(n)) {
            out.push(format!("{} `{}` was added", kind(n), method_name(n)));
        }
    }
    out
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
}

/// Checks `sections` against the lock file at `path`: a locked section that
/// differs is an error naming what changed; unlocked sections are appended
/// when `UPSHIFT_LOCK=add` (never rewriting a locked one). Returns the lock
/// file's path if it exists, so the expansion can depend on it.
pub fn check_sections(cx: &Ctxt, sections: &[Section], path: Option<PathBuf>) -> Option<PathBuf> {
    let path = path?;
    let text = std::fs::read_to_string(&path).ok();
    let locked = text.as_deref().map(parse).unwrap_or_default();
    let mut additions = String::new();
    for s in sections {
        match locked.get(&s.key) {
            Some(old) if *old != s.lines => cx.syn_error(syn::Error::new(
                s.span,
                format!(
                    "{} (locked in {}) and must not change: {}; {}",
                    s.what,
                    path.display(),
                    changes(old, &s.lines).join("; "),
                    s.advice
                ),
            )),
            Some(_) => {}
            None => additions.push_str(&format!(
                "\n[{} fnv1a:{:016x}]\n{}\n",
                s.key,
                fingerprint(&s.lines),
                s.lines.join("\n")
            )),
        }
    }
    let adding = std::env::var("UPSHIFT_LOCK").is_ok_and(|v| v == "add");
    if adding && !additions.is_empty() && !cx.has_errors() {
        let body = format!(
            "{}{additions}",
            text.clone().unwrap_or_else(|| HEADER.to_string())
        );
        if let Err(e) = std::fs::write(&path, body) {
            let span = sections.first().map_or_else(Span::call_site, |s| s.span);
            cx.syn_error(syn::Error::new(
                span,
                format!("cannot write {}: {e}", path.display()),
            ));
        }
        return Some(path);
    }
    text.map(|_| path)
}

/// The lock sections of every version of an interface.
pub fn interface_sections(svc: &Service) -> Vec<Section> {
    svc.versions
        .iter()
        .map(|v| Section {
            key: format!("{} v{}", svc.wire_name, v.number),
            lines: canonical(v),
            span: v.number_span,
            what: format!("v{} of `{}` is released", v.number, svc.wire_name),
            advice: format!(
                "keep v{} as it was and declare the change as a new version",
                v.number
            ),
        })
        .collect()
}
