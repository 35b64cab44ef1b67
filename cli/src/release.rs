//! `upshift keys` and `upshift release`: release keys, and signing a
//! binary as a release (see `upshift::upgrade::release`).

use std::path::{Path, PathBuf};

use upshift::clock::now_ms;
use upshift::upgrade::release::{Release, ReleaseKeys, SigningKey, digest_file};

use crate::Failure;

/// `upshift keys generate`: `count` new signing keys in `dir`
/// (`release-<id>.key`, readable by the owner only) and the list nodes and
/// coordinators trust (`release.keys`, public), needing `threshold` of them.
pub fn generate(dir: &Path, count: u32, threshold: u32) -> Result<(), Failure> {
    let fail = |what: String| Failure(what, 2);
    if count == 0 || threshold == 0 || threshold > count {
        return Err(fail(format!(
            "--threshold {threshold} must be between 1 and --count {count}"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    let list_path = dir.join("release.keys");
    if list_path.exists() {
        return Err(fail(format!(
            "{} exists; generate new keys in another directory (rotating keys: see the security chapter)",
            list_path.display()
        )));
    }
    let keys: Vec<SigningKey> = (0..count).map(|_| SigningKey::generate()).collect();
    for key in &keys {
        let path = dir.join(format!("release-{}.key", key.id()));
        write_secret(&path, &key.to_file())
            .map_err(|e| fail(format!("write {}: {e}", path.display())))?;
        println!("secret key {}", path.display());
    }
    let publics: Vec<[u8; 32]> = keys.iter().map(SigningKey::public).collect();
    let list = ReleaseKeys::new(threshold, &publics).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&list_path, list.to_file())
        .map_err(|e| fail(format!("write {}: {e}", list_path.display())))?;
    println!(
        "trusted key list {} ({threshold} of {count} must sign)",
        list_path.display()
    );
    Ok(())
}

/// Creates `path` readable and writable by its owner only, and writes `text`.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// What `upshift release sign` is given.
#[derive(clap::Args)]
pub struct Sign {
    /// A secret key file; repeat for each signer.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// The service the binary serves.
    #[arg(long)]
    service: String,
    /// The version it runs.
    #[arg(long)]
    version: u32,
    /// The binary.
    #[arg(long)]
    binary: PathBuf,
    /// Higher than every earlier release of the service: nodes refuse a
    /// release older than one they accepted.
    #[arg(long)]
    sequence: u64,
    /// Days until nodes refuse it.
    #[arg(long, default_value_t = 30)]
    expires_in_days: u64,
    /// The lock file the binary was built against (its fingerprint is signed too).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// Also copy the binary here as `sha256-<hex>`, where nodes fetch it.
    #[arg(long)]
    source: Option<PathBuf>,
}

/// `upshift release sign`: prints the artifact string of `binary` signed
/// as a release; with `source`, also copies the binary there as
/// `sha256-<hex>`, where nodes fetch it.
pub fn sign(args: Sign) -> Result<(), Failure> {
    let fail = |what: String| Failure(what, 2);
    if args.keys.is_empty() {
        return Err(fail("--key is needed at least once".into()));
    }
    let keys = args
        .keys
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("read {}: {e}", path.display())))?;
            SigningKey::from_file(&text).map_err(|e| fail(format!("{}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expires_ms = now_ms().saturating_add(args.expires_in_days.saturating_mul(86_400_000));
    let mut release = Release::for_binary(
        &args.binary,
        &args.service,
        args.version,
        args.sequence,
        expires_ms,
    )
    .map_err(|e| fail(format!("read {}: {e}", args.binary.display())))?;
    if let Some(path) = &args.lock {
        let (digest, _) =
            digest_file(path).map_err(|e| fail(format!("read {}: {e}", path.display())))?;
        release.lock = Some(format!("sha256-{}", &digest[..32]));
    }
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let artifact = release.sign(&refs).map_err(|e| fail(e.to_string()))?;
    if let Some(source) = &args.source {
        release
            .add_to_source(&args.binary, source)
            .map_err(|e| fail(format!("copy into {}: {e}", source.display())))?;
    }
    println!("{artifact}");
    Ok(())
}
