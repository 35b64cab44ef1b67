//! Signed releases: what a node may restart into, and who said so.
//!
//! A release is a one-line manifest — the service, the version the binary
//! runs, the binary's SHA-256 and length, a sequence number that only
//! grows, an expiry, and optionally the fingerprint of the lock file it was
//! built against — signed by at least `threshold` of a service's release
//! keys (ed25519). It travels as the upgrade's artifact string:
//!
//! ```text
//! release:v1;service=kv;version=2;sha256=<64 hex>;length=18342112;sequence=7;expires=1767225600000;sig=<key id>:<128 hex>;sig=…
//! ```
//!
//! The signatures cover `upshift release\n` followed by everything before
//! the first `;sig=`. Nodes check a release themselves ([`SignedRelease::verify`]
//! with their own [`ReleaseKeys`], [`Seen`] for rollbacks) before they fetch
//! or run anything; the coordinator checks it too before it publishes, so a
//! bad release fails at once instead of halting a rollout.
//!
//! The rules, against TUF's: signatures by a threshold of keys (TUF's
//! role thresholds; upshift has one role, the release keys); a sequence
//! number a node never accepts going down (TUF's version numbers against
//! rollback); an expiry (TUF's against freeze); the length bounds the
//! download (TUF's against endless data); the key list changes only by a
//! new list signed by a threshold of the current keys
//! ([`ReleaseKeys::rotate`], TUF's root rotation). Not modelled: TUF's
//! separate timestamp and snapshot roles (a release names one binary, so
//! there is no set to mix and match), and delegations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What an artifact string of a release starts with.
pub const RELEASE_PREFIX: &str = "release:v1;";

/// What signatures cover before the manifest's text: a signature made for
/// anything else never verifies as a release.
const DOMAIN: &str = "upshift release\n";
/// What a key list's signatures cover before its text.
const KEYS_DOMAIN: &str = "upshift release keys\n";
/// The first line of a key list file.
const KEYS_HEADER: &str = "upshift release keys v1";
/// The first line of a secret key file.
const SECRET_HEADER: &str = "upshift release secret key v1";

/// One release: which binary, for what, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The service the binary serves.
    pub service: String,
    /// The version it runs.
    pub version: u32,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Its length in bytes: a download stops past it.
    pub length: u64,
    /// Grows with every release of the service; a node refuses one below
    /// the highest it has accepted.
    pub sequence: u64,
    /// Unix milliseconds after which nobody accepts it.
    pub expires_ms: u64,
    /// The fingerprint of the lock file it was built against, if given.
    pub lock: Option<String>,
}

/// A release with its signatures, as parsed from an artifact string.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRelease {
    release: Release,
    /// The exact text the signatures cover (without [`DOMAIN`]).
    signed: String,
    signatures: Vec<(KeyId, [u8; 64])>,
}

impl fmt::Debug for SignedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRelease")
            .field("release", &self.release)
            .field(
                "signed_by",
                &self.signatures.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A release key's id: the first 8 bytes of the SHA-256 of its public key,
/// in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl KeyId {
    fn of(public: &[u8; 32]) -> Self {
        let digest = Sha256::digest(public);
        let mut id = [0; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

/// Why a release, a key list or a key file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The text is not a release, a key list or a key as upshift writes them.
    #[error("not a valid {what}: {detail}")]
    Syntax {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Fewer valid signatures by distinct trusted keys than the threshold.
    #[error(
        "the release is signed by {valid} of the trusted release keys, and {threshold} are needed; sign it with more keys (upshift release sign --key …)"
    )]
    UnderSigned {
        /// Valid signatures by distinct trusted keys.
        valid: usize,
        /// How many are needed.
        threshold: u32,
    },
    /// The release's expiry has passed.
    #[error("the release expired at {expires_ms} (Unix ms), it is now {now_ms}; sign a new one")]
    Expired {
        /// When it expired.
        expires_ms: u64,
        /// Now.
        now_ms: u64,
    },
    /// A release older than one accepted before (a rollback).
    #[error(
        "release sequence {sequence} of {service} is below {seen}, the highest accepted; refusing an older release"
    )]
    Rollback {
        /// The service.
        service: String,
        /// This release's sequence number.
        sequence: u64,
        /// The highest accepted.
        seen: u64,
    },
    /// The release is for another service or version than the upgrade.
    #[error("the release is for {found}, but the upgrade is of {expected}")]
    Mismatch {
        /// What the upgrade needs.
        expected: String,
        /// What the release says.
        found: String,
    },
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

fn syntax(what: &'static str, detail: impl Into<String>) -> ReleaseError {
    ReleaseError::Syntax {
        what,
        detail: detail.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Release {
    /// The manifest's text, which signatures cover.
    fn text(&self) -> String {
        let mut text = format!(
            "{RELEASE_PREFIX}service={};version={};sha256={};length={};sequence={};expires={}",
            self.service, self.version, self.sha256, self.length, self.sequence, self.expires_ms
        );
        if let Some(lock) = &self.lock {
            text.push_str(&format!(";lock={lock}"));
        }
        text
    }

    /// The release of `binary` (its digest and length, streamed) for
    /// `service` at `version`.
    pub fn for_binary(
        binary: &Path,
        service: &str,
        version: u32,
        sequence: u64,
        expires_ms: u64,
    ) -> std::io::Result<Release> {
        let (sha256, length) = digest_file(binary)?;
        Ok(Release {
            service: service.to_string(),
            version,
            sha256,
            length,
            sequence,
            expires_ms,
            lock: None,
        })
    }

    /// The binary's file name in a release source and a node's store.
    fn file_name(&self) -> String {
        format!("sha256-{}", self.sha256)
    }

    /// Copies `binary` (this release's) into the release source `source`
    /// under the name nodes fetch it by ([`fetch`]).
    pub fn add_to_source(&self, binary: &Path, source: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(source)?;
        let target = source.join(self.file_name());
        std::fs::copy(binary, &target)?;
        Ok(target)
    }

    /// Whether it is the release of `service` at `version` (an upgrade's).
    pub fn is_for(&self, service: &str, version: u32) -> Result<(), ReleaseError> {
        if self.service != service || self.version != version {
            return Err(ReleaseError::Mismatch {
                expected: format!("{service} v{version}"),
                found: format!("{} v{}", self.service, self.version),
            });
        }
        Ok(())
    }

    /// Refuses it as a rollback from a release of its service accepted
    /// before (`sequence`, `sha256`): a lower sequence, or the same one
    /// with another binary.
    pub fn not_older_than(&self, sequence: u64, sha256: &str) -> Result<(), ReleaseError> {
        if self.sequence < sequence || (self.sequence == sequence && self.sha256 != sha256) {
            return Err(ReleaseError::Rollback {
                service: self.service.clone(),
                sequence: self.sequence,
                seen: sequence,
            });
        }
        Ok(())
    }

    /// The artifact string of this release signed by `keys`.
    pub fn sign(&self, keys: &[&SigningKey]) -> Result<String, ReleaseError> {
        self.check()?;
        let text = self.text();
        let mut out = text.clone();
        let message = format!("{DOMAIN}{text}");
        for key in keys {
            out.push_str(&format!(
                ";sig={}:{}",
                key.id(),
                hex(&key.sign(message.as_bytes()))
            ));
        }
        Ok(out)
    }

    fn check(&self) -> Result<(), ReleaseError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !name_ok(&self.service) {
            return Err(syntax(
                "release",
                format!(
                    "service {:?}: 1 to 128 letters, digits, '-', '_' or '.'",
                    self.service
                ),
            ));
        }
        if unhex::<32>(&self.sha256).is_none()
            || self.sha256.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(syntax("release", "sha256: 64 lowercase hex digits"));
        }
        if let Some(lock) = &self.lock
            && !name_ok(lock)
        {
            return Err(syntax("release", format!("lock fingerprint {lock:?}")));
        }
        Ok(())
    }
}

impl SignedRelease {
    /// Whether an artifact string is a release (it may still be malformed).
    pub fn is_release(artifact: &str) -> bool {
        artifact.starts_with("release:")
    }

    /// Parses an artifact string written by [`Release::sign`].
    pub fn parse(artifact: &str) -> Result<Self, ReleaseError> {
        let what = "release";
        if !artifact.starts_with(RELEASE_PREFIX) {
            return Err(syntax(
                what,
                format!("it must start with {RELEASE_PREFIX:?}"),
            ));
        }
        let (signed, sigs) = match artifact.find(";sig=") {
            Some(at) => (&artifact[..at], &artifact[at + 1..]),
            None => (artifact, ""),
        };
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for part in signed[RELEASE_PREFIX.len()..].split(';') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| syntax(what, format!("{part:?} is not name=value")))?;
            if ![
                "service", "version", "sha256", "length", "sequence", "expires", "lock",
            ]
            .contains(&name)
            {
                return Err(syntax(what, format!("unknown field {name:?}")));
            }
            if fields.insert(name, value).is_some() {
                return Err(syntax(what, format!("field {name:?} given twice")));
            }
        }
        let text = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| syntax(what, format!("field {name:?} is missing")))
        };
        let number = |name: &str| -> Result<u64, ReleaseError> {
            text(name)?
                .parse()
                .map_err(|_| syntax(what, format!("field {name:?} is not a number")))
        };
        let version = number("version")?;
        let release = Release {
            service: text("service")?.to_string(),
            version: u32::try_from(version)
                .map_err(|_| syntax(what, "field \"version\" is too large"))?,
            sha256: text("sha256")?.to_string(),
            length: number("length")?,
            sequence: number("sequence")?,
            expires_ms: number("expires")?,
            lock: fields.get("lock").map(|s| s.to_string()),
        };
        release.check()?;
        // The text must be the one signing writes, so what a node shows is
        // what was signed, byte for byte.
        if release.text() != signed {
            return Err(syntax(what, "fields out of order or not in canonical form"));
        }
        let mut signatures = Vec::new();
        for sig in sigs.split(';').filter(|s| !s.is_empty()) {
            let (id, bytes) = sig
                .strip_prefix("sig=")
                .and_then(|s| s.split_once(':'))
                .ok_or_else(|| syntax(what, format!("{sig:?} is not sig=<key id>:<signature>")))?;
            let id = unhex::<8>(id).ok_or_else(|| syntax(what, format!("key id {id:?}")))?;
            let bytes = unhex::<64>(bytes)
                .ok_or_else(|| syntax(what, "a signature is not 128 hex digits"))?;
            signatures.push((KeyId(id), bytes));
        }
        Ok(SignedRelease {
            release,
            signed: signed.to_string(),
            signatures,
        })
    }

    /// The release, unverified: for display only.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The release, once signatures by at least the threshold of `keys`
    /// verify and it has not expired at `now_ms`.
    pub fn verify(&self, keys: &ReleaseKeys, now_ms: u64) -> Result<&Release, ReleaseError> {
        let message = format!("{DOMAIN}{}", self.signed);
        let valid = keys.count_valid(message.as_bytes(), &self.signatures);
        if valid < keys.threshold as usize {
            return Err(ReleaseError::UnderSigned {
                valid,
                threshold: keys.threshold,
            });
        }
        if now_ms >= self.release.expires_ms {
            return Err(ReleaseError::Expired {
                expires_ms: self.release.expires_ms,
                now_ms,
            });
        }
        Ok(&self.release)
    }
}

/// A release signing key (ed25519). Keep its file secret.
pub struct SigningKey(ed25519_compact::KeyPair);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.id())
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        SigningKey(ed25519_compact::KeyPair::generate())
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.public())
    }

    /// The public half, for a [`ReleaseKeys`] list.
    pub fn public(&self) -> [u8; 32] {
        *self.0.pk
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        *self.0.sk.sign(message, None)
    }

    /// The key file's text.
    pub fn to_file(&self) -> String {
        format!("{SECRET_HEADER}\n{}\n", hex(&self.0.sk[..]))
    }

    /// Reads a key file written by [`SigningKey::to_file`].
    pub fn from_file(text: &str) -> Result<Self, ReleaseError> {
        let what = "release secret key";
        let mut lines = text.lines();
        if lines.next() != Some(SECRET_HEADER) {
            return Err(syntax(
                what,
                format!("the first line must be {SECRET_HEADER:?}"),
            ));
        }
        let bytes = lines
            .next()
            .and_then(|l| unhex::<64>(l.trim()))
            .ok_or_else(|| syntax(what, "the second line must be 128 hex digits"))?;
        let pair = ed25519_compact::KeyPair::from_slice(&bytes)
            .map_err(|e| syntax(what, e.to_string()))?;
        pair.validate().map_err(|e| syntax(what, e.to_string()))?;
        Ok(SigningKey(pair))
    }
}

/// The release keys a node or coordinator trusts, and how many must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseKeys {
    threshold: u32,
    keys: BTreeMap<KeyId, [u8; 32]>,
    /// Signatures of this list by the previous one's keys (a rotation).
    endorsements: Vec<(KeyId, [u8; 64])>,
}

impl ReleaseKeys {
    /// A list of `keys` of which `threshold` must sign.
    pub fn new(threshold: u32, keys: &[[u8; 32]]) -> Result<Self, ReleaseError> {
        let keys: BTreeMap<KeyId, [u8; 32]> = keys.iter().map(|k| (KeyId::of(k), *k)).collect();
        if threshold == 0 || threshold as usize > keys.len() {
            return Err(syntax(
                "release key list",
                format!("threshold {threshold} with {} distinct keys", keys.len()),
            ));
        }
        for key in keys.values() {
            ed25519_compact::PublicKey::from_slice(key)
                .map_err(|e| syntax("release key list", e.to_string()))?;
        }
        Ok(ReleaseKeys {
            threshold,
            keys,
            endorsements: Vec::new(),
        })
    }

    /// How many must sign.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// The trusted keys' ids.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.keys().copied()
    }

    /// Valid signatures of `message` by distinct keys of this list.
    fn count_valid(&self, message: &[u8], signatures: &[(KeyId, [u8; 64])]) -> usize {
        let mut signed_by = BTreeSet::new();
        for (id, sig) in signatures {
            let Some(key) = self.keys.get(id) else {
                continue;
            };
            let (Ok(pk), Ok(sig)) = (
                ed25519_compact::PublicKey::from_slice(key),
                ed25519_compact::Signature::from_slice(sig),
            ) else {
                continue;
            };
            if pk.verify(message, &sig).is_ok() {
                signed_by.insert(*id);
            }
        }
        signed_by.len()
    }

    /// The text this list's endorsements cover.
    fn body(&self) -> String {
        let mut body = format!("{KEYS_HEADER}\nthreshold {}\n", self.threshold);
        for key in self.keys.values() {
            body.push_str(&format!("key {}\n", hex(key)));
        }
        body
    }

    /// `next`, endorsed by `signers` (keys of this list) so that holders of
    /// this list accept it with [`ReleaseKeys::rotate`].
    pub fn endorse(&self, next: &ReleaseKeys, signers: &[&SigningKey]) -> ReleaseKeys {
        let message = format!("{KEYS_DOMAIN}{}", next.body());
        let mut next = next.clone();
        next.endorsements = signers
            .iter()
            .filter(|s| self.keys.contains_key(&s.id()))
            .map(|s| (s.id(), s.sign(message.as_bytes())))
            .collect();
        next
    }

    /// Replaces this list with `next` if a threshold of this list's keys
    /// endorsed it: keys change only with the consent of the current ones.
    pub fn rotate(&self, next: &ReleaseKeys) -> Result<ReleaseKeys, ReleaseError> {
        let message = format!("{KEYS_DOMAIN}{}", next.body());
        let valid = self.count_valid(message.as_bytes(), &next.endorsements);
        if valid < self.threshold as usize {
            return Err(ReleaseError::UnderSigned {
                valid,
                threshold: self.threshold,
            });
        }
        Ok(next.clone())
    }

    /// The list's file text (with its endorsements, if any).
    pub fn to_file(&self) -> String {
        let mut text = self.body();
        for (id, sig) in &self.endorsements {
            text.push_str(&format!("endorsement {id} {}\n", hex(sig)));
        }
        text
    }

    /// Reads a list written by [`ReleaseKeys::to_file`].
    pub fn from_file(text: &str) -> Result<Self, ReleaseError> {
        let what = "release key list";
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(KEYS_HEADER) {
            return Err(syntax(
                what,
                format!("the first line must be {KEYS_HEADER:?}"),
            ));
        }
        let (mut threshold, mut keys, mut endorsements) = (None, Vec::new(), Vec::new());
        for line in lines {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("threshold"), Some(n), None, None) => {
                    threshold = Some(
                        n.parse()
                            .map_err(|_| syntax(what, format!("threshold {n:?}")))?,
                    );
                }
                (Some("key"), Some(k), None, None) => {
                    keys.push(
                        unhex::<32>(k).ok_or_else(|| {
                            syntax(what, format!("key {k:?} is not 64 hex digits"))
                        })?,
                    );
                }
                (Some("endorsement"), Some(id), Some(sig), None) => {
                    let id =
                        unhex::<8>(id).ok_or_else(|| syntax(what, format!("key id {id:?}")))?;
                    let sig = unhex::<64>(sig)
                        .ok_or_else(|| syntax(what, "an endorsement is not 128 hex digits"))?;
                    endorsements.push((KeyId(id), sig));
                }
                _ => return Err(syntax(what, format!("unexpected line {line:?}"))),
            }
        }
        let threshold = threshold.ok_or_else(|| syntax(what, "no threshold line"))?;
        let mut list = ReleaseKeys::new(threshold, &keys)?;
        list.endorsements = endorsements;
        Ok(list)
    }

    /// Reads a list from a file.
    pub fn read(path: &Path) -> Result<Self, ReleaseError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReleaseError::Io(format!("read {}: {e}", path.display())))?;
        Self::from_file(&text)
    }
}

/// The highest release sequence a node has accepted, per service, kept in
/// a file so that a restart does not forget it (rollback protection).
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
}

impl Seen {
    /// The record kept at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Seen { path: path.into() }
    }

    fn read(&self) -> Result<BTreeMap<String, (u64, String)>, ReleaseError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(ReleaseError::Io(format!(
                    "read {}: {e}",
                    self.path.display()
                )));
            }
        };
        let mut seen = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some(service), Some(sequence), Some(sha)) =
                (words.next(), words.next(), words.next())
                && let Ok(sequence) = sequence.parse()
            {
                seen.insert(service.to_string(), (sequence, sha.to_string()));
            } else {
                return Err(ReleaseError::Io(format!(
                    "{} is damaged: line {line:?}; restore it (deleting it gives up rollback protection)",
                    self.path.display()
                )));
            }
        }
        Ok(seen)
    }

    /// Accepts `release` unless a higher sequence of its service was
    /// accepted before (the same release again is accepted), and records it
    /// durably before returning.
    pub fn accept(&self, release: &Release) -> Result<(), ReleaseError> {
        let mut seen = self.read()?;
        if let Some((sequence, sha)) = seen.get(&release.service) {
            release.not_older_than(*sequence, sha)?;
        }
        seen.insert(
            release.service.clone(),
            (release.sequence, release.sha256.clone()),
        );
        let text: String = seen
            .iter()
            .map(|(service, (sequence, sha))| format!("{service} {sequence} {sha}\n"))
            .collect();
        let io =
            |e: std::io::Error| ReleaseError::Io(format!("write {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// Why a release's binary could not be fetched. The messages name the
/// release's digest only: nothing a caller chose, and nothing about other
/// files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No readable file for the digest in the release source.
    #[error("the release source has no readable binary sha256-{0}")]
    Missing(String),
    /// The file is longer than the signed length: the download stopped.
    #[error("the binary sha256-{sha256} is longer than its signed {length} bytes; refusing it")]
    TooLong {
        /// The signed digest.
        sha256: String,
        /// The signed length.
        length: u64,
    },
    /// The file is shorter than signed, or its digest differs.
    #[error("the binary sha256-{0} does not match its signed length and digest; refusing it")]
    Mismatch(String),
    /// The node's own store could not take it.
    #[error("the release store {path}: {reason}")]
    Store {
        /// The store directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Copies the binary of `release` from `source` (where binaries are named
/// `sha256-<hex>`) into `store`, hashing as it streams and stopping past
/// the signed length; returns the verified copy's path. The path depends
/// only on the signed digest, never on the caller.
pub fn fetch(release: &Release, source: &Path, store: &Path) -> Result<PathBuf, FetchError> {
    let name = release.file_name();
    let target = store.join(&name);
    let store_error = |e: std::io::Error| FetchError::Store {
        path: store.to_path_buf(),
        reason: e.to_string(),
    };
    let mut input = std::fs::File::open(source.join(&name))
        .map_err(|_| FetchError::Missing(release.sha256.clone()))?;
    std::fs::create_dir_all(store).map_err(store_error)?;
    let tmp = store.join(format!("{name}.part"));
    let mut output = std::fs::File::create(&tmp).map_err(store_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 << 10];
    let mut total: u64 = 0;
    let result = loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(_) => break Err(FetchError::Missing(release.sha256.clone())),
        };
        total += n as u64;
        if total > release.length {
            break Err(FetchError::TooLong {
                sha256: release.sha256.clone(),
                length: release.length,
            });
        }
        hasher.update(&buf[..n]);
        if let Err(e) = output.write_all(&buf[..n]) {
            break Err(store_error(e));
        }
    };
    let verified = result.and_then(|()| {
        if total != release.length || hex(&hasher.finalize()) != release.sha256 {
            return Err(FetchError::Mismatch(release.sha256.clone()));
        }
        output.sync_all().map_err(store_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(store_error)?;
        }
        std::fs::rename(&tmp, &target).map_err(store_error)
    });
    if verified.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    verified.map(|()| target)
}

/// The SHA-256 (lowercase hex) and length of the file at `path`, streamed.
pub fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex(&hasher.finalize()), total));
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn release(sequence: u64, expires_ms: u64) -> Release {
        Release {
            service: "Kv".into(),
            version: 2,
            sha256: hex(&Sha256::digest(b"the v2 binary")),
            length: 13,
            sequence,
            expires_ms,
            lock: Some("sha256-0123abcd".into()),
        }
    }

    fn keys(n: usize) -> Vec<SigningKey> {
        (0..n).map(|_| SigningKey::generate()).collect()
    }

    fn list(threshold: u32, signers: &[SigningKey]) -> ReleaseKeys {
        let publics: Vec<[u8; 32]> = signers.iter().map(SigningKey::public).collect();
        ReleaseKeys::new(threshold, &publics).expect("a key list")
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_release_needs_the_threshold_of_distinct_trusted_signatures() {
        let k = keys(4);
        let trusted = list(2, &k[..3]);
        let r = release(1, NOW + 1);
        let two = r.sign(&[&k[0], &k[2]]).expect("sign");
        let parsed = SignedRelease::parse(&two).expect("parses");
        assert_eq!(parsed.verify(&trusted, NOW).expect("verifies"), &r);
        // One key twice is one signature; a key outside the list is none.
        for signers in [vec![&k[0]], vec![&k[0], &k[0]], vec![&k[1], &k[3]]] {
            let text = r.sign(&signers).expect("sign");
            assert_eq!(
                SignedRelease::parse(&text)
                    .expect("parses")
                    .verify(&trusted, NOW),
                Err(ReleaseError::UnderSigned {
                    valid: 1,
                    threshold: 2
                })
            );
        }
        let unsigned = r.text();
        assert_eq!(
            SignedRelease::parse(&unsigned)
                .expect("parses")
                .verify(&trusted, NOW),
            Err(ReleaseError::UnderSigned {
                valid: 0,
                threshold: 2
            })
        );
    }

    #[test]
    fn a_tampered_expired_or_foreign_release_is_refused() {
        let k = keys(2);
        let trusted = list(2, &k);
        let signed = release(3, NOW + 1).sign(&[&k[0], &k[1]]).expect("sign");
        // Another binary under the same signatures.
        let other = hex(&Sha256::digest(b"a script"));
        let tampered = signed.replace(&release(3, 0).sha256, &other);
        assert_eq!(
            SignedRelease::parse(&tampered)
                .expect("parses")
                .verify(&trusted, NOW),
            Err(ReleaseError::UnderSigned {
                valid: 0,
                threshold: 2
            })
        );
        let longer = signed.replace("length=13", "length=99999999");
        assert!(
            SignedRelease::parse(&longer)
                .expect("parses")
                .verify(&trusted, NOW)
                .is_err()
        );
        // Fields moved are not the canonical text: refused before any signature.
        let moved = signed.replace("service=Kv;version=2", "version=2;service=Kv");
        assert!(matches!(
            SignedRelease::parse(&moved),
            Err(ReleaseError::Syntax { .. })
        ));
        assert_eq!(
            SignedRelease::parse(&signed)
                .expect("parses")
                .verify(&trusted, NOW + 1),
            Err(ReleaseError::Expired {
                expires_ms: NOW + 1,
                now_ms: NOW + 1
            })
        );
        // A signature over the same text for another purpose does not count.
        let message = release(3, NOW + 1).text();
        let bare = k[0].sign(message.as_bytes());
        let forged = format!("{message};sig={}:{}", k[0].id(), hex(&bare));
        assert!(
            SignedRelease::parse(&forged)
                .expect("parses")
                .verify(&list(1, &k), NOW)
                .is_err()
        );
    }

    #[test]
    fn seen_refuses_rollbacks_and_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("upshift-seen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The directory is made on the first record.
        let seen = Seen::at(dir.join("seen"));
        seen.accept(&release(5, NOW)).expect("first");
        seen.accept(&release(5, NOW))
            .expect("the same release again");
        let seen = Seen::at(dir.join("seen"));
        assert_eq!(
            seen.accept(&release(4, NOW)),
            Err(ReleaseError::Rollback {
                service: "Kv".into(),
                sequence: 4,
                seen: 5
            })
        );
        let mut other = release(5, NOW);
        other.sha256 = hex(&Sha256::digest(b"another binary"));
        assert!(seen.accept(&other).is_err(), "one sequence, one binary");
        seen.accept(&release(6, NOW)).expect("newer");
        std::fs::write(dir.join("seen"), "Kv not-a-number\n").expect("damage");
        assert!(
            matches!(seen.accept(&release(7, NOW)), Err(ReleaseError::Io(m)) if m.contains("damaged"))
        );
    }

    #[test]
    fn keys_rotate_only_with_the_current_keys_consent() {
        let old = keys(3);
        let new = keys(2);
        let current = list(2, &old);
        let next = list(1, &new);
        let endorsed = current.endorse(&next, &[&old[0], &old[2]]);
        let reread = ReleaseKeys::from_file(&endorsed.to_file()).expect("reads back");
        assert_eq!(current.rotate(&reread).expect("rotates"), endorsed);
        for signers in [vec![&old[1]], vec![&new[0], &new[1]]] {
            let short = current.endorse(&next, &signers);
            assert!(matches!(
                current.rotate(&short),
                Err(ReleaseError::UnderSigned { .. })
            ));
        }
        // The new keys sign releases; the old ones no longer do.
        let r = release(9, NOW + 1);
        let by_new = SignedRelease::parse(&r.sign(&[&new[1]]).expect("sign")).expect("parses");
        assert!(by_new.verify(&endorsed, NOW).is_ok());
        let by_old =
            SignedRelease::parse(&r.sign(&[&old[0], &old[1]]).expect("sign")).expect("parses");
        assert!(by_old.verify(&endorsed, NOW).is_err());
    }

    #[test]
    fn key_files_read_back_and_bad_ones_say_why() {
        let key = SigningKey::generate();
        let again = SigningKey::from_file(&key.to_file()).expect("reads back");
        assert_eq!(again.public(), key.public());
        for bad in [
            "",
            "upshift release secret key v1\nzz",
            "something else\n00",
        ] {
            assert!(SigningKey::from_file(bad).is_err(), "{bad:?}");
        }
        assert!(ReleaseKeys::from_file("upshift release keys v1\nthreshold 2\n").is_err());
        let one = list(1, &[key]);
        assert!(
            ReleaseKeys::from_file(&one.to_file().replace("threshold 1", "threshold 3")).is_err()
        );
    }

    #[test]
    fn fetching_stops_at_the_signed_length_and_names_only_the_digest() {
        let base = std::env::temp_dir().join(format!("upshift-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (source, store) = (base.join("source"), base.join("store"));
        std::fs::create_dir_all(&source).expect("dir");
        let r = release(1, NOW);
        let name = format!("sha256-{}", r.sha256);
        assert_eq!(
            fetch(&r, &source, &store),
            Err(FetchError::Missing(r.sha256.clone()))
        );
        std::fs::write(source.join(&name), b"the v2 binary").expect("write");
        let got = fetch(&r, &source, &store).expect("fetched");
        assert_eq!(std::fs::read(&got).expect("read"), b"the v2 binary");
        assert_eq!(got, store.join(&name));
        // Endless data is cut at the signed length, whatever the file is.
        #[cfg(unix)]
        {
            std::fs::remove_file(source.join(&name)).expect("remove");
            std::os::unix::fs::symlink("/dev/zero", source.join(&name)).expect("link");
            assert_eq!(
                fetch(&r, &source, &store),
                Err(FetchError::TooLong {
                    sha256: r.sha256.clone(),
                    length: 13
                })
            );
            std::fs::remove_file(source.join(&name)).expect("remove");
        }
        std::fs::write(source.join(&name), b"the v2 binar!").expect("write");
        let err = fetch(&r, &source, &store).expect_err("another binary");
        assert_eq!(err, FetchError::Mismatch(r.sha256.clone()));
        // The message names the signed digest, never the file's own.
        let actual = hex(&Sha256::digest(b"the v2 binar!"));
        assert!(!err.to_string().contains(&actual), "{err}");
        assert!(!store.join(format!("{name}.part")).exists());
        let _ = std::fs::remove_dir_all(&base);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,300}") {
            let _ = SignedRelease::parse(&text);
            let _ = SignedRelease::parse(&format!("{RELEASE_PREFIX}{text}"));
            let _ = ReleaseKeys::from_file(&text);
            let _ = SigningKey::from_file(&text);
        }

        #[test]
        fn a_signed_release_reads_back(sequence in any::<u64>(), version in any::<u32>(), length in any::<u64>()) {
            let k = SigningKey::generate();
            let r = Release { sequence, version, length, ..release(0, u64::MAX) };
            let parsed = SignedRelease::parse(&r.sign(&[&k]).expect("sign")).expect("parses");
            prop_assert_eq!(parsed.verify(&list(1, &[k]), 0).expect("verifies"), &r);
        }
    }
}
