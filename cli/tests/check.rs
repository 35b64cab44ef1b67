//! `upshift check` and `upshift lock` on a real crate built by real cargo:
//! a fixture crate written to `target/tests/upshift-check`, with its own
//! workspace and target directory, edited between runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_upshift");

const CARGO_TOML: &str = r#"[package]
name = "check-fixture"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
upshift = { path = "RUNTIME" }
serde = { version = "1", features = ["derive"] }

[workspace]
"#;

/// The fixture's source; tests edit it with `str::replace`.
const LIB: &str = r#"
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
pub struct Note {
    pub text: String,
}

#[upshift::interface]
pub mod greeter {
    use super::Note;

    #[version(1)]
    pub trait Greeter {
        async fn hello(&self, name: String) -> Note;
    }

    #[version(2)]
    pub trait Greeter {
        async fn hello(&self, name: String) -> Note;
        async fn bye(&self, name: String);
    }
}

#[upshift::state(name = "greetings")]
pub mod store {
    #[version(1)]
    pub struct Store {
        pub count: u64,
    }
}
"#;

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        Self::named("fixture")
    }

    /// A fixture crate of its own under `target/tests/upshift-check/NAME`.
    fn named(name: &str) -> Fixture {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = root.join("target/tests/upshift-check").join(name);
        let _ = std::fs::remove_dir_all(dir.join("src"));
        let _ = std::fs::remove_file(dir.join("upshift.lock"));
        std::fs::create_dir_all(dir.join("src")).expect("fixture dir");
        let runtime = root.join("runtime").canonicalize().expect("runtime dir");
        let manifest = CARGO_TOML.replace("RUNTIME", &runtime.display().to_string());
        std::fs::write(dir.join("Cargo.toml"), manifest).expect("Cargo.toml");
        // The workspace's resolution, so the fixture builds offline with the
        // same dependency versions.
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("Cargo.lock");
        let fixture = Fixture { dir };
        fixture.write(LIB);
        fixture
    }

    fn write(&self, lib: &str) {
        std::fs::write(self.dir.join("src/lib.rs"), lib).expect("lib.rs");
    }

    fn lock_file(&self) -> String {
        std::fs::read_to_string(self.dir.join("upshift.lock")).unwrap_or_default()
    }

    fn command(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", self.dir.join("../target"))
            .env("CARGO_NET_OFFLINE", "true")
            .env_remove("UPSHIFT_LOCK")
            .env_remove("UPSHIFT_LOCK_REPORT")
            .output()
            .expect("run the command")
    }

    fn upshift(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.command(BIN, args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    fn cargo_check(&self) -> (bool, String) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = self.command(&cargo, &["check", "--quiet"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The last line of stderr: the command's one-line error.
fn error_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or("")
}

#[test]
fn check_and_lock_guard_released_versions() {
    let f = Fixture::new();

    // Nothing locked yet: reported, not a failure, unless asked for.
    let (code, out, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(
            "unlocked  Greeter v1, Greeter v2, state greetings v1, type Note (no lock file upshift.lock)"
        ),
        "{out}"
    );
    assert!(
        out.contains("0 changed, 0 match the lock, 0 added, 4 not locked"),
        "{out}"
    );
    let (code, _, err) = f.upshift(&["check", "--all-locked"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        error_line(&err),
        "error: 4 version(s) or type(s) not locked; lock released versions with `upshift lock`"
    );

    // `upshift lock` adds them all; a second run adds nothing.
    let (code, out, err) = f.upshift(&["lock"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(
            "added     Greeter v1, Greeter v2, state greetings v1, type Note to upshift.lock"
        ),
        "{out}"
    );
    let locked = f.lock_file();
    for section in [
        "[Greeter v1 fnv1a:",
        "method hello(name: String) -> Note\n",
        "[Greeter v2 fnv1a:",
        "[state greetings v1 fnv1a:",
        "struct Store { count: u64 }",
        "[type Note fnv1a:",
        "field text: String",
    ] {
        assert!(
            locked.contains(section),
            "{section} missing from:\n{locked}"
        );
    }
    let (code, out, _) = f.upshift(&["lock"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("0 changed, 4 match the lock, 0 added, 0 not locked"),
        "{out}"
    );
    let (code, out, _) = f.upshift(&["check", "--all-locked"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "ok        Greeter v1, Greeter v2, state greetings v1, type Note (upshift.lock)"
        ),
        "{out}"
    );

    // Editing the lock file alone rebuilds the crate: plain cargo fails.
    let (ok, err) = f.cargo_check();
    assert!(ok, "{err}");
    let tampered = locked.replacen(
        "method hello(name: String) -> Note\n",
        "method hello(name: String) -> String\n",
        1,
    );
    std::fs::write(f.dir.join("upshift.lock"), &tampered).expect("tamper");
    let (ok, err) = f.cargo_check();
    assert!(!ok, "a tampered lock must fail the build");
    assert!(
        err.contains("is corrupt: section `[Greeter v1]` (line 9) does not match its fingerprint"),
        "cargo check output: {err}"
    );
    std::fs::write(f.dir.join("upshift.lock"), &locked).expect("restore");

    // A locked method and a field of a locked type change: exit 1, both
    // named, the lock file untouched — also by `upshift lock`.
    let edited = LIB
        .replace(
            "        async fn hello(&self, name: String) -> Note;\n    }\n\n    #[version(2)]",
            "        async fn hello(&self, name: String, loud: bool) -> Note;\n    }\n\n    #[version(2)]",
        )
        .replace("pub text: String,", "pub text: Vec<u8>,");
    assert_ne!(edited, LIB);
    f.write(&edited);
    let (code, out, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    // Each violation with its place: the method's, the type's, and the
    // released version whose reply reaches the type.
    for expected in [
        "changed   src/lib.rs:11:15: v1 of `Greeter` is released (locked in ",
        "upshift.lock) and must not change: method `hello` changed from `hello(name)` to \
         `hello(name, loud)`; keep v1 as it was and declare the change as a new version",
        "changed   src/lib.rs:3:12: type `Note` is used by released versions Greeter v1, Greeter v2 (locked in ",
        "upshift.lock) and its encoding must not change: `Note.text` was `string`, is now `seq<u8>`; \
         leave it as it was and give the new shape a new type in a new version",
        "v2 of `Greeter` is released (locked in ",
        "upshift.lock) and its encoding must not change: `hello.return.text` was `string`, is now `seq<u8>`",
    ] {
        assert!(out.contains(expected), "{expected}\nnot in:\n{out}");
    }
    assert!(
        out.contains("3 changed, 3 match the lock, 0 added, 0 not locked"),
        "{out}"
    );
    assert_eq!(
        error_line(&err),
        "error: 3 locked version(s) or type(s) changed; keep them as they were and declare a new version"
    );
    let (code, _, _) = f.upshift(&["lock"]);
    assert_eq!(code, Some(1));
    assert_eq!(f.lock_file(), locked, "a locked version is never rewritten");

    // Another compile error is not a lock violation: exit 2.
    f.write(&format!(
        "{LIB}\npub fn broken() -> u32 {{ \"not a number\" }}\n"
    ));
    let (code, _, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        error_line(&err).starts_with("error: cargo check failed"),
        "{err}"
    );

    // A new version is reported as not locked yet, and locking adds only it.
    let v3 = LIB.replace(
        "        async fn bye(&self, name: String);\n    }\n",
        "        async fn bye(&self, name: String);\n    }\n\n    #[version(3)]\n    pub trait Greeter {\n        async fn hello(&self, name: String) -> Note;\n    }\n",
    );
    assert_ne!(v3, LIB);
    f.write(&v3);
    let (code, out, _) = f.upshift(&["check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("unlocked  Greeter v3 (not in upshift.lock)"),
        "{out}"
    );
    let (code, out, _) = f.upshift(&["lock"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("added     Greeter v3 to upshift.lock"),
        "{out}"
    );
    let now = f.lock_file();
    assert!(
        now.starts_with(&locked),
        "locking appends, it does not rewrite"
    );
    assert!(now.contains("[Greeter v3 fnv1a:"));

    // `upshift docs` renders a page per interface and state, keeps them
    // fresh with --check, and gives tools the same as JSON.
    let (code, out, err) = f.upshift(&["docs", "--out", "docs"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let greeter = std::fs::read_to_string(f.dir.join("docs/Greeter.md")).expect("Greeter.md");
    for line in [
        "# `Greeter`: versions and what changed",
        "| v2 | `hello`, `bye` |  |",
        "- `bye(name: String) -> ()` — **added**",
        "- `bye` — **removed**",
        "v2 → v3: `v2::Past` must implement `bye`; `v3::Future` must implement none (all delegate).",
    ] {
        assert!(greeter.contains(line), "{line:?} missing from:\n{greeter}");
    }
    let state = std::fs::read_to_string(f.dir.join("docs/state-greetings.md")).expect("state page");
    assert!(
        state.starts_with("# State `greetings`: versions and what changed"),
        "{state}"
    );
    let (code, out, _) = f.upshift(&["docs", "--out", "docs", "--check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 page(s) in docs are up to date"), "{out}");
    f.write(&v3.replace(
        "    #[version(1)]\n    pub trait Greeter",
        "    /// v1: says hello.\n    #[version(1)]\n    pub trait Greeter",
    ));
    let (code, _, err) = f.upshift(&["docs", "--out", "docs", "--check"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        error_line(&err),
        "error: 1 of 2 page(s) in docs are stale or missing: Greeter.md; regenerate them with `upshift docs --out docs`"
    );
    let (code, out, _) = f.upshift(&["docs", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let versions = json["interfaces"]["Greeter"]
        .as_array()
        .expect("Greeter's versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["doc"], "v1: says hello.");
    assert_eq!(versions[2]["removed"][0], "bye");
    assert_eq!(json["states"]["greetings"][0]["types"][0]["name"], "Store");
}

/// `lock = "…"` names a lock file beside the source file that declares the
/// definition, in a crate built by real cargo (it once resolved against the
/// path rustc was given, so the build looked for `src/src/extra.lock`).
#[test]
fn the_lock_option_names_a_file_beside_its_source() {
    let f = Fixture::named("lock-option");
    f.write(&format!("{LIB}\nmod extra;\n"));
    let extra = r#"
#[upshift::interface(lock = "extra.lock")]
pub mod extra_api {
    #[version(1)]
    pub trait Extra {
        async fn ping(&self) -> u64;
    }
}
"#;
    std::fs::write(f.dir.join("src/extra.rs"), extra).expect("extra.rs");
    let _ = std::fs::remove_file(f.dir.join("src/extra.lock"));
    let (code, out, err) = f.upshift(&["lock"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("added     Extra v1 to src/extra.lock"),
        "{out}"
    );
    let locked = std::fs::read_to_string(f.dir.join("src/extra.lock")).expect("src/extra.lock");
    assert!(locked.contains("method ping() -> u64"), "{locked}");
    let (ok, err) = f.cargo_check();
    assert!(ok, "plain cargo check with the lock file present: {err}");
    std::fs::write(
        f.dir.join("src/extra.rs"),
        extra.replace("-> u64", "-> u32"),
    )
    .expect("edit");
    let (code, out, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("changed   src/extra.rs:"),
        "the place of the changed reply: {out}"
    );
    assert!(
        out.contains("src/extra.lock) and its encoding must not change: `ping.return` was `u64`, is now `u32`"),
        "{out}"
    );

    // A renamed trait: the released section is no longer reported by any
    // definition, which is an error naming it, not a silent "unlocked".
    std::fs::write(
        f.dir.join("src/extra.rs"),
        extra.replace("trait Extra", "trait Pinger"),
    )
    .expect("rename");
    let (code, out, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("missing   Extra v1 (locked in src/extra.lock, but no definition reports it"),
        "{out}"
    );
    assert!(
        error_line(&err).contains("to retire a version on purpose, delete its section"),
        "{err}"
    );
}

/// The generated decoding tests run in the user's `cargo test`, and catch a
/// hand-written `Schema` that does not tell the truth; `compatibility wire`
/// accepts what reads alike (a rename, a widening) and refuses the rest.
#[test]
fn decoding_tests_and_the_wire_mode() {
    let f = Fixture::named("wire");
    // A level written as a signed number whose schema claims unsigned: the
    // bytes of 3 read back as -2, which only the values show.
    let lying = format!(
        "{LIB}\n#[derive(serde::Serialize, serde::Deserialize)]\npub struct Level(pub i32);\n\
         impl upshift::schema::Schema for Level {{\n    \
         const ENCODING: &'static upshift::schema::Encoding = &upshift::schema::Encoding::U32;\n}}\n\n\
         #[upshift::interface]\npub mod levels {{\n    use super::Level;\n\n    #[version(1)]\n    \
         pub trait Levels {{\n        async fn level(&self) -> Level;\n    }}\n}}\n"
    );
    f.write(&lying);
    let (code, out, err) = f.upshift(&["lock"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = |filter: &str| {
        let out = f.command(&cargo, &["test", "--quiet", "--lib", "--", filter]);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout) + &text(&out.stderr))
    };
    let (ok, out) = test("__upshift_decode_levels");
    assert!(!ok, "a schema that lies fails the decoding test:\n{out}");
    assert!(
        out.contains("v1 of `Levels` is released: today's types do not read what it wrote"),
        "{out}"
    );
    assert!(
        out.contains("- `level.return` (locked as `u32`): the bytes ["),
        "{out}"
    );
    assert!(out.contains("were read as [Signed("), "{out}");
    // The truthful elements pass: one test per released section.
    let (ok, out) = test("__upshift_decode_greeter");
    assert!(ok, "{out}");
    assert!(out.contains("2 passed"), "{out}");
    let (ok, out) = test("__upshift_decode_state");
    assert!(ok && out.contains("1 passed"), "{out}");

    // Frozen (the default): a renamed field breaks the build.
    f.write(&LIB.replace("pub text: String,", "pub body: String,"));
    let (code, out, _) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "{out}");
    // Retire the lying version (delete its section), then choose wire.
    let locked = f.lock_file();
    let start = locked.find("\n[Levels v1").expect("the Levels section");
    let end = locked[start + 1..]
        .find("\n[")
        .map_or(locked.len(), |i| start + 1 + i);
    let locked = format!("{}{}", &locked[..start], &locked[end..]);
    // Wire: the same rename and a widening are accepted...
    std::fs::write(
        f.dir.join("upshift.lock"),
        locked.replacen("\n\n[", "\ncompatibility wire\n\n[", 1),
    )
    .expect("choose wire");
    f.write(
        &LIB.replace("pub text: String,", "pub body: String,")
            .replace(
                "async fn hello(&self, name: String) -> Note;\n    }\n\n    #[version(2)]",
                "async fn greet(&self, who: String) -> Note;\n    }\n\n    #[version(2)]",
            )
            .replace("pub count: u64,", "pub count: u128,"),
    );
    let (code, out, err) = f.upshift(&["check"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("0 changed, 4 match the lock"), "{out}");
    let (ok, out) = test("__upshift_decode");
    assert!(ok && out.contains("3 passed"), "{out}");
    // ...and what reads differently is named, with its place.
    f.write(&LIB.replace("pub count: u64,", "pub count: i64,").replace(
        "async fn bye(&self, name: String);",
        "async fn bye(&self, name: String, loud: bool);",
    ));
    let (code, out, _) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "v1 of state `greetings` is released (locked in ",
        "upshift.lock) and what it writes must stay readable (compatibility wire): `Store.count` was `u64`, is now `i64`; keep it as it was and declare the change as a new version",
        "v2 of `Greeter` is released (locked in ",
        "upshift.lock) and what it writes must stay readable (compatibility wire): `bye` ends where today's types read `bool` more; keep v2 as it was and declare the change as a new version",
    ] {
        assert!(out.contains(expected), "{expected}\nnot in:\n{out}");
    }
    // Methods keep their places: calls name them by index.
    f.write(&LIB.replace(
        "        async fn hello(&self, name: String) -> Note;\n        async fn bye(&self, name: String);",
        "        async fn bye(&self, name: String);\n        async fn hello(&self, name: String) -> Note;",
    ));
    let (code, out, _) = f.upshift(&["check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("must keep its methods in place (compatibility wire): it had `hello, bye`, has `bye, hello`"),
        "{out}"
    );
}
