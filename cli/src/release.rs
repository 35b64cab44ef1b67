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
    let list = new_keys(dir, count, threshold)?;
    write_list(&dir.join("release.keys"), &list)?;
    println!(
        "trusted key list {} ({threshold} of {count} must sign)",
        dir.join("release.keys").display()
    );
    Ok(())
}

/// `count` new secret keys written in `dir`, and their list (not written).
fn new_keys(dir: &Path, count: u32, threshold: u32) -> Result<ReleaseKeys, Failure> {
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
            "{} exists; generate new keys in another directory (rotating keys: `upshift keys rotate`)",
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
    ReleaseKeys::new(threshold, &publics).map_err(|e| fail(e.to_string()))
}

fn write_list(path: &Path, list: &ReleaseKeys) -> Result<(), Failure> {
    // Written aside and renamed: a reader never sees half a list.
    let tmp = path.with_extension("keys.tmp");
    std::fs::write(&tmp, list.to_file())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Failure(format!("write {}: {e}", path.display()), 2))
}

fn read_list(path: &Path) -> Result<ReleaseKeys, Failure> {
    ReleaseKeys::read(path).map_err(|e| Failure(format!("{}: {e}", path.display()), 2))
}

fn read_keys(paths: &[PathBuf]) -> Result<Vec<SigningKey>, Failure> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure(format!("read {}: {e}", path.display()), 2))?;
            SigningKey::from_file(&text).map_err(|e| Failure(format!("{}: {e}", path.display()), 2))
        })
        .collect()
}

/// `upshift keys rotate`: new keys in `dir` and their list, endorsed by
/// `signers` of the `current` list. The endorsement is checked as every
/// holder of the current list will check it, so a rotation they would
/// refuse is refused here, before anything is distributed.
pub fn rotate(
    dir: &Path,
    count: u32,
    threshold: u32,
    current: &Path,
    signers: &[PathBuf],
) -> Result<(), Failure> {
    let current_list = read_list(current)?;
    let signers = read_keys(signers)?;
    let refs: Vec<&SigningKey> = signers.iter().collect();
    let next = new_keys(dir, count, threshold)?;
    let endorsed = current_list.endorse(&next, &refs);
    current_list.rotate(&endorsed).map_err(|e| {
        Failure(
            format!(
                "the new list would not be accepted by holders of {}: {e}",
                current.display()
            ),
            2,
        )
    })?;
    write_list(&dir.join("release.keys"), &endorsed)?;
    println!(
        "endorsed key list {} ({threshold} of {count} must sign), accepted by holders of {}",
        dir.join("release.keys").display(),
        current.display()
    );
    println!(
        "on each node and coordinator: upshift keys accept --current {} --next {}",
        current.display(),
        dir.join("release.keys").display()
    );
    Ok(())
}

/// `upshift keys accept`: replaces the `current` list by `next` if a
/// threshold of the current keys endorsed it; otherwise changes nothing.
pub fn accept(current: &Path, next: &Path) -> Result<(), Failure> {
    let current_list = read_list(current)?;
    let next_list = read_list(next)?;
    let accepted = current_list.rotate(&next_list).map_err(|e| {
        Failure(
            format!(
                "{} is not endorsed by the keys of {}: {e}",
                next.display(),
                current.display()
            ),
            2,
        )
    })?;
    write_list(current, &accepted)?;
    println!(
        "{} now trusts {} keys, {} of which must sign",
        current.display(),
        accepted.ids().count(),
        accepted.threshold()
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
    let keys = read_keys(&args.keys)?;
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
