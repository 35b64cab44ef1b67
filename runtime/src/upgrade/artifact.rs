//! Artifacts: where a version's code is, and the checksum it must have.
//!
//! An upgrade definition names its artifact as `in-process` (the running
//! binary already holds the new version), `release:v1;…` (a signed release,
//! see [`release`](super::release): what nodes with release keys accept),
//! or `file:PATH?sha256=HEX` (a binary to restart into, for development: the
//! publisher names a path on the node's host). A node verifies the checksum
//! before it uses the file.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Where the new version's code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// The running binary holds the new version: swap inside the process.
    InProcess,
    /// A signed release: a binary to restart into, named by its digest,
    /// with the signatures that vouch for it.
    Release(Box<super::release::SignedRelease>),
    /// A binary to restart into, with its SHA-256.
    File {
        /// The binary.
        path: PathBuf,
        /// Its SHA-256, lowercase hex.
        sha256: String,
    },
}

/// Why an artifact cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// The artifact string is neither `in-process`, a release nor `file:PATH?sha256=HEX`.
    #[error(
        "artifact {0:?} is neither `in-process`, `release:v1;…` (upshift release sign) nor `file:PATH?sha256=HEX`"
    )]
    Syntax(String),
    /// A release that is malformed, or not acceptable.
    #[error(transparent)]
    Release(#[from] super::release::ReleaseError),
    /// A release's binary could not be fetched and verified.
    #[error(transparent)]
    Fetch(#[from] super::release::FetchError),
    /// A node with release keys was given an unsigned binary.
    #[error(
        "this node runs only signed releases; publish a `release:` artifact (upshift release sign) instead of a file path"
    )]
    Unsigned,
    /// A release reached a node without release keys.
    #[error(
        "this node has no release keys (NodeConfig::releases), so it cannot check a signed release"
    )]
    NoReleaseKeys,
    /// The file could not be read.
    #[error("cannot read artifact {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file's checksum is not the published one.
    #[error(
        "artifact {path} has sha256 {actual}, but the upgrade says {expected}; refusing to run it"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Published checksum.
        expected: String,
        /// Checksum of the file.
        actual: String,
    },
}

impl Artifact {
    /// Parses an upgrade definition's artifact string.
    pub fn parse(s: &str) -> Result<Self, ArtifactError> {
        if s == "in-process" {
            return Ok(Artifact::InProcess);
        }
        if super::release::SignedRelease::is_release(s) {
            return Ok(Artifact::Release(Box::new(
                super::release::SignedRelease::parse(s)?,
            )));
        }
        let rest = s
            .strip_prefix("file:")
            .ok_or_else(|| ArtifactError::Syntax(s.into()))?;
        let (path, sha) = rest
            .split_once("?sha256=")
            .ok_or_else(|| ArtifactError::Syntax(s.into()))?;
        let valid = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if path.is_empty() || !valid {
            return Err(ArtifactError::Syntax(s.into()));
        }
        Ok(Artifact::File {
            path: PathBuf::from(path),
            sha256: sha.to_ascii_lowercase(),
        })
    }

    /// `file:PATH?sha256=HEX` for the binary at `path`, computing its checksum.
    pub fn file(path: impl Into<PathBuf>) -> Result<String, ArtifactError> {
        let path = path.into();
        let sha = sha256_of(&path)?;
        Ok(format!("file:{}?sha256={sha}", path.display()))
    }

    /// Checks a file artifact's checksum; in-process artifacts pass (a
    /// release is checked against release keys, by the node).
    pub fn verify(&self) -> Result<(), ArtifactError> {
        let Artifact::File { path, sha256 } = self else {
            return Ok(());
        };
        let actual = sha256_of(path)?;
        if &actual != sha256 {
            return Err(ArtifactError::Checksum {
                path: path.clone(),
                expected: sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

fn sha256_of(path: &PathBuf) -> Result<String, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|e| ArtifactError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_parse_and_verify() {
        assert_eq!(Artifact::parse("in-process"), Ok(Artifact::InProcess));
        assert!(matches!(
            Artifact::parse("release:v1;service=kv"),
            Err(ArtifactError::Release(_))
        ));
        for bad in [
            "file:/x",
            "file:?sha256=00",
            "http://x",
            "file:/x?sha256=zz",
        ] {
            assert!(Artifact::parse(bad).is_err(), "{bad}");
        }
        let dir = std::env::temp_dir().join(format!("upshift-artifact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let bin = dir.join("bin");
        std::fs::write(&bin, b"abc").expect("write");
        let spec = Artifact::file(&bin).expect("checksum");
        assert!(spec.ends_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        Artifact::parse(&spec)
            .expect("parses")
            .verify()
            .expect("matches");
        std::fs::write(&bin, b"abd").expect("tamper");
        assert!(matches!(
            Artifact::parse(&spec).expect("parses").verify(),
            Err(ArtifactError::Checksum { .. })
        ));
    }
}
