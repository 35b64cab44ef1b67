//! `upshift keys tls` and `--tls`/`--as` against a real coordinator process
//! serving mutual TLS: the CLI calls with the certificate it is told to,
//! and what that identity may not do fails in one line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_upshift");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn upshift(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run upshift")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_cli_calls_with_the_certificate_it_is_told_to() {
    let dir = std::env::temp_dir().join(format!("upshift-cli-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    let certs_arg = certs.to_str().expect("utf-8 path");
    let made = upshift(&[
        "keys",
        "tls",
        certs_arg,
        "--node",
        "n1",
        "--operator",
        "alice",
        "--reader",
        "bob",
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    for file in [
        "ca.pem",
        "ca.key",
        "coordinator.pem",
        "node-n1.pem",
        "operator-alice.key",
        "reader-bob.pem",
    ] {
        assert!(certs.join(file).exists(), "{file} missing");
    }
    assert!(text(&made.stdout).contains("upshift://operator/alice"));

    let mut child = Command::new(BIN)
        .args([
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--tls",
            certs_arg,
            "--udb",
        ])
        .arg(dir.join("udb.redb"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the coordinator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read its first line");
    let _coordinator = Killed(child);
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let status = upshift(&[
        "status",
        "-c",
        &addr,
        "--tls",
        certs_arg,
        "--as",
        "reader-bob",
    ]);
    assert!(status.status.success(), "{}", text(&status.stderr));

    let publish = |who: &[&str]| {
        let mut args = vec![
            "publish",
            "-c",
            &addr,
            "--service",
            "Kv",
            "--from",
            "1",
            "--to",
            "2",
            "--tls",
            certs_arg,
        ];
        args.extend_from_slice(who);
        upshift(&args)
    };
    let refused = publish(&["--as", "reader-bob"]);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("reader bob may not publish an upgrade"),
        "{err}"
    );

    // The directory's only operator by default: allowed, and refused only
    // because no node of the service is registered.
    let operator = publish(&[]);
    let err = text(&operator.stderr);
    assert_eq!(operator.status.code(), Some(2), "{err}");
    assert!(!err.contains("not allowed"), "{err}");

    let plain = upshift(&["status", "-c", &addr]);
    assert_eq!(plain.status.code(), Some(2), "{}", text(&plain.stderr));
}
