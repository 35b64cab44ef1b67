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

/// Secret key files of a key directory.
fn secret_keys(dir: &Path) -> Vec<String> {
    let mut keys: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .map(|p| p.display().to_string())
        .collect();
    keys.sort();
    keys
}

/// Rotating release keys: a new list endorsed by two of the three current
/// keys is accepted in place of the current one; an under-endorsed one is
/// refused by `rotate` before anything is written, and by `accept`.
#[test]
fn keys_rotate_only_with_a_threshold_of_the_current_keys() {
    let dir = std::env::temp_dir().join(format!("upshift-cli-rotate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (old, new, short) = (dir.join("old"), dir.join("new"), dir.join("short"));
    let path = |p: &Path| p.display().to_string();
    let made = upshift(&[
        "keys",
        "generate",
        "--dir",
        &path(&old),
        "--count",
        "3",
        "--threshold",
        "2",
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let current = old.join("release.keys");
    // A trusted copy, as a node holds it.
    let node_copy = dir.join("node-release.keys");
    std::fs::copy(&current, &node_copy).expect("copy");
    let old_secrets = secret_keys(&old);

    let under = upshift(&[
        "keys",
        "rotate",
        "--dir",
        &path(&short),
        "--current",
        &path(&current),
        "--sign",
        &old_secrets[0],
    ]);
    assert_eq!(under.status.code(), Some(2), "{}", text(&under.stderr));
    assert!(
        text(&under.stderr).contains("would not be accepted"),
        "{}",
        text(&under.stderr)
    );
    assert!(
        !short.join("release.keys").exists(),
        "nothing distributable was written"
    );

    let rotated = upshift(&[
        "keys",
        "rotate",
        "--dir",
        &path(&new),
        "--count",
        "2",
        "--threshold",
        "2",
        "--current",
        &path(&current),
        "--sign",
        &old_secrets[0],
        "--sign",
        &old_secrets[2],
    ]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let next = new.join("release.keys");

    // A list endorsed by keys the node does not trust is refused, and the
    // node's list stays as it was.
    let forged = upshift(&[
        "keys",
        "accept",
        "--current",
        &path(&node_copy),
        "--next",
        &path(&short.join("release.keys")),
    ]);
    assert_eq!(forged.status.code(), Some(2));
    let stranger = dir.join("stranger");
    let made = upshift(&["keys", "generate", "--dir", &path(&stranger)]);
    assert!(made.status.success());
    let refused = upshift(&[
        "keys",
        "accept",
        "--current",
        &path(&node_copy),
        "--next",
        &path(&stranger.join("release.keys")),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("is not endorsed"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        ReleaseKeys::read(&node_copy).expect("read"),
        ReleaseKeys::read(&current).expect("read")
    );

    let accepted = upshift(&[
        "keys",
        "accept",
        "--current",
        &path(&node_copy),
        "--next",
        &path(&next),
    ]);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    let trusted = ReleaseKeys::read(&node_copy).expect("the rotated list");
    assert_eq!((trusted.threshold(), trusted.ids().count()), (2, 2));
    let new_ids: Vec<_> = ReleaseKeys::read(&next).expect("read").ids().collect();
    assert_eq!(trusted.ids().collect::<Vec<_>>(), new_ids);
    let _ = std::fs::remove_dir_all(&dir);
}
