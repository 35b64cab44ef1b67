//! The lock file's format: sections of canonical lines, each under a header
//! with its fingerprint. The macros read and write it; `upshift check` reads
//! it to find released sections no definition reports any more.

use std::collections::BTreeMap;

/// The comment every lock file starts with.
pub const HEADER: &str = "# upshift lock file: the schema of every released interface version, type and state version.\n\
# Check it in. A locked version must never change: declare a new version instead.\n\
# Add new versions with `upshift lock`, which also records what each released element encodes; locked lines are never rewritten.\n";

/// The start of a line that records an element's encoding:
/// `encoding get.key: string`. `upshift lock` writes them (through a test
/// the macros generate); the build compares today's types with them.
const ENCODING_PREFIX: &str = "encoding ";

/// The lock line recording that `label` encodes as `encoding`.
pub fn encoding_line(label: &str, encoding: &str) -> String {
    format!("{ENCODING_PREFIX}{label}: {encoding}")
}

/// The start of the line that chooses the lock file's [`Compatibility`]:
/// `compatibility wire`, before the first section.
const COMPATIBILITY_PREFIX: &str = "compatibility ";

/// What a released version may still change, for every section of one lock
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compatibility {
    /// The default: what a released version encodes never changes, names
    /// of methods, arguments, fields and variants included.
    #[default]
    Frozen,
    /// Opt-in: a change is accepted when every byte string the released
    /// version writes is read by today's types as the same value and
    /// written back as the same bytes (renames, `Box<T>` ↔ `T`, a struct
    /// ↔ a tuple of the same items, varint widenings).
    Wire,
}

impl Compatibility {
    /// Its name in the lock file.
    pub fn name(self) -> &'static str {
        match self {
            Compatibility::Frozen => "frozen",
            Compatibility::Wire => "wire",
        }
    }
}

/// The lock file's compatibility: `compatibility wire` before the first
/// section, else [`Compatibility::Frozen`]. An unknown mode is an error
/// naming its line.
pub fn compatibility(text: &str) -> Result<Compatibility, String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some(mode) = line.strip_prefix(COMPATIBILITY_PREFIX) {
            return match mode.trim() {
                "frozen" => Ok(Compatibility::Frozen),
                "wire" => Ok(Compatibility::Wire),
                other => Err(format!(
                    "line {}: `compatibility {other}` is no mode; write `compatibility frozen` (the default) or `compatibility wire`",
                    i + 1
                )),
            };
        }
    }
    Ok(Compatibility::Frozen)
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

/// One section of a lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// Its canonical lines.
    pub lines: Vec<String>,
    /// The fingerprint its header records.
    pub fingerprint: u64,
    /// The header's line number, for messages.
    pub line: usize,
}

impl Locked {
    /// Its lines as written (methods, fields, variants, state types),
    /// without the encoding lines.
    pub fn written(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| encoding_of(l).is_none())
            .cloned()
            .collect()
    }

    /// `(label, encoding)` of each encoding line, in order.
    pub fn encodings(&self) -> Vec<(&str, &str)> {
        self.lines.iter().filter_map(|l| encoding_of(l)).collect()
    }
}

/// `(label, encoding)` when `line` is an encoding line.
fn encoding_of(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix(ENCODING_PREFIX)?.split_once(": ")
}

/// Sections of a lock file, by their header without the fingerprint
/// (`Kv v1`, `type Entry`, `state kv v1`); and every way the file is
/// malformed, each naming its line.
pub fn parse(text: &str) -> (BTreeMap<String, Locked>, Vec<String>) {
    let mut out: BTreeMap<String, Locked> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut current: Option<String> = None;
    // After a header that is reported, its lines are not reported again.
    let mut skipping = false;
    for (i, line) in text.lines().enumerate() {
        let (n, line) = (i + 1, line.trim());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let mut words: Vec<&str> = header.split_whitespace().collect();
            let fingerprint = words
                .pop()
                .and_then(|w| w.strip_prefix("fnv1a:"))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            current = None;
            skipping = true;
            match fingerprint {
                Some(fingerprint) if words.len() >= 2 => {
                    let key = words.join(" ");
                    if let Some(first) = out.get(&key) {
                        problems.push(format!(
                            "line {n}: section `[{key}]` appears again (first at line {})",
                            first.line
                        ));
                    } else {
                        out.insert(
                            key.clone(),
                            Locked {
                                lines: Vec::new(),
                                fingerprint,
                                line: n,
                            },
                        );
                        current = Some(key);
                        skipping = false;
                    }
                }
                _ => problems.push(format!(
                    "line {n}: `{line}` is not a section header such as `[Kv v1 fnv1a:0123456789abcdef]`"
                )),
            }
        } else if out.is_empty() && !skipping && line.starts_with(COMPATIBILITY_PREFIX) {
            // Read by `compatibility`.
        } else if let Some(section) = current.as_ref().and_then(|k| out.get_mut(k)) {
            section.lines.push(line.to_string());
        } else if !skipping {
            problems.push(format!("line {n}: `{line}` is outside any section"));
        }
    }
    (out, problems)
}

/// The header line of a section: `[Kv v1 fnv1a:0123456789abcdef]`.
pub fn header(key: &str, lines: &[String]) -> String {
    format!("[{key} fnv1a:{:016x}]", fingerprint(lines))
}

/// `text` with section `key`'s lines replaced by `lines` and its
/// fingerprint renewed; everything else as it was. `None` when `text` has
/// no such section.
pub fn replace_section(text: &str, key: &str, lines: &[String]) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut found = false;
    let mut skipping = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(inner) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let mut words: Vec<&str> = inner.split_whitespace().collect();
            words.pop();
            skipping = false;
            if !found && words.join(" ") == key {
                found = true;
                skipping = true;
                out.push_str(&header(key, lines));
                out.push('\n');
                for l in lines {
                    out.push_str(l);
                    out.push('\n');
                }
                continue;
            }
        } else if skipping {
            // The old lines go; a blank line before the next section stays.
            if trimmed.is_empty() {
                out.push('\n');
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    found.then_some(out)
}
