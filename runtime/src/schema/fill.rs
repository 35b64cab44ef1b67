//! The half of `upshift lock` that needs the compiled types: the macros
//! cannot evaluate a `Schema` (they see only tokens), so in `upshift lock`'s
//! mode they emit a test that calls [`fill_lock`], which writes each
//! element's encoding into its section of the lock file.

use std::io::{Read, Seek, Write};

use super::encoding::{Encoding, render};
use upshift_schema::lock::{Compatibility, compatibility, encoding_line, parse, replace_section};

/// One section's elements: `(label, encoding)`.
pub type Elements<'a> = &'a [(&'a str, &'static Encoding)];

/// Writes the encodings of `sections` into the lock file at `path`, for
/// sections that have none yet; checks the ones that have (under the
/// default `compatibility frozen`). Runs in tests
/// generated only when the macros expand with `UPSHIFT_LOCK=add`.
///
/// # Panics
///
/// When the lock file cannot be read or written, or a section's recorded
/// encoding differs from today's (the build reports that first).
pub fn fill_lock(path: &str, sections: &[(&str, Elements<'_>)]) {
    let adding = std::env::var("UPSHIFT_LOCK").is_ok_and(|v| v == "add");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(adding)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open the lock file {path}: {e}"));
    if adding {
        // Tests of several crates run at once and may share the file.
        file.lock()
            .unwrap_or_else(|e| panic!("cannot lock {path}: {e}"));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let (locked, _) = parse(&text);
    // Under `compatibility wire` today's encodings may differ from the
    // recorded ones; the build checks that they read alike.
    let frozen = compatibility(&text).is_ok_and(|m| m == Compatibility::Frozen);
    let mut changed = false;
    for (key, elements) in sections {
        // A section the macro did not add (it had errors) is not ours to fill.
        let Some(section) = locked.get(*key) else {
            continue;
        };
        let recorded: Vec<String> = section
            .encodings()
            .into_iter()
            .map(|(label, e)| encoding_line(label, e))
            .collect();
        let today: Vec<String> = elements
            .iter()
            .map(|(label, e)| encoding_line(label, render(e).as_str()))
            .collect();
        if recorded.is_empty() {
            if !adding {
                continue;
            }
            let mut lines = section.lines.clone();
            lines.extend(today);
            text = replace_section(&text, key, &lines).unwrap_or(text);
            changed = true;
        } else if frozen {
            assert_eq!(
                recorded, today,
                "the encodings of `{key}` in {path} differ from today's types; \
                 a released version must not change (the build names the element)"
            );
        }
    }
    if changed {
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
}
