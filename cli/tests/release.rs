//! `upshift keys generate` and `upshift release sign` as an operator runs
//! them: the files they write, what a node then accepts, and the errors.

use std::path::Path;
use std::process::{Command, Output};

use upshift::upgrade::release::{ReleaseKeys, SignedRelease};

fn upshift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upshift"))
        .args(args)
        .output()
        .expect("run upshift")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_sign_a_release_that_verifies_against_the_written_list() {
    let dir = std::env::temp_dir().join(format!("upshift-cli-release-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys = dir.join("keys");
    let out = upshift(&[
        "keys",
        "generate",
        "--dir",
        &keys.display().to_string(),
        "--count",
        "3",
        "--threshold",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secrets: Vec<_> = std::fs::read_dir(&keys)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    assert_eq!(secrets.len(), 3);
    #[cfg(unix)]
    for secret in &secrets {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(secret)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
    }
    // A second run would replace the trusted list: refused.
    let again = upshift(&["keys", "generate", "--dir", &keys.display().to_string()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    let binary = dir.join("kv-node-v2");
    std::fs::write(&binary, b"#!/bin/sh\necho v2\n").expect("binary");
    let source = dir.join("source");
    let sign = |keys: &[&Path]| {
        let mut args = vec!["release".to_string(), "sign".to_string()];
        for key in keys {
            args.extend(["--key".to_string(), key.display().to_string()]);
        }
        for (flag, value) in [
            ("--service", "Kv".to_string()),
            ("--version", "2".into()),
            ("--binary", binary.display().to_string()),
            ("--sequence", "1".into()),
            ("--source", source.display().to_string()),
        ] {
            args.extend([flag.to_string(), value]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        upshift(&args)
    };
    let trusted = ReleaseKeys::read(&keys.join("release.keys")).expect("the list");
    let out = sign(&[&secrets[0], &secrets[2]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let artifact = text(&out.stdout).trim().to_string();
    let release = SignedRelease::parse(&artifact).expect("parses");
    let verified = release
        .verify(&trusted, upshift::clock::now_ms())
        .expect("two of three verify");
    assert_eq!(
        (verified.service.as_str(), verified.version, verified.length),
        ("Kv", 2, 18)
    );
    assert!(source.join(format!("sha256-{}", verified.sha256)).exists());
    // One signer is not enough for this list.
    let out = sign(&[&secrets[1]]);
    let one = SignedRelease::parse(text(&out.stdout).trim()).expect("parses");
    assert!(one.verify(&trusted, upshift::clock::now_ms()).is_err());
    // A file that is not a key says so.
    let out = sign(&[&binary]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a valid release secret key"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
