//! The embedded snapshot store: one directory per node, one file per
//! committed version, written atomically.
//!
//! A save writes `<name>.v<N>.snap.tmp`, syncs it, renames it to
//! `<name>.v<N>.snap` and syncs the directory: the rename is the commit. Only
//! then are snapshots of older versions removed, so a crash at any step leaves
//! the old snapshot, the new one, or both — and reading takes the newest
//! committed one and finishes the clean-up.
//!
//! File layout (integers big-endian):
//!
//! ```text
//! magic "USSNAP\r\n" (8) | format (1) | name length (1) | name | version (4)
//! | applied (8) | payload length (8) | crc32 of everything before it and of the payload (4) | payload
//! ```
//!
//! `applied` is the sequence number of the last journal entry the payload
//! holds ([`Journal`](super::Journal)), so recovery replays only what came
//! after it. Format 1 files (without it) are read as `applied` 0.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Snapshot, SnapshotStore, StoreError};

const MAGIC: &[u8; 8] = b"USSNAP\r\n";
const FORMAT: u8 = 2;
/// The format before snapshots recorded the journal entries they hold.
const FORMAT_1: u8 = 1;
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";
/// `NAME.rolled-back`: the version a rollback committed (see
/// [`FileStore::rolled_back_to`]).
const ROLLED_BACK_SUFFIX: &str = ".rolled-back";
/// The longest possible header: magic, format, name length, a 255-byte
/// name, version, applied, payload length, checksum.
const MAX_HEADER: usize = 8 + 1 + 1 + 255 + 4 + 8 + 8 + 4;

/// A point in a save, reported to the step hook (for crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// The temporary file exists and is empty.
    TempCreated,
    /// Half of the temporary file is written.
    HalfWritten,
    /// The temporary file is written but not yet synced.
    Written,
    /// The temporary file is synced.
    Synced,
    /// The temporary file is renamed to its final name (committed).
    Renamed,
    /// The directory is synced: the commit is durable.
    DirSynced,
    /// Snapshots of older versions are removed.
    OldRemoved,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::TempCreated,
        Step::HalfWritten,
        Step::Written,
        Step::Synced,
        Step::Renamed,
        Step::DirSynced,
        Step::OldRemoved,
    ];
}

type Hook = Arc<dyn Fn(Step) + Send + Sync>;

/// Committed snapshots as (version, path), and unfinished temporary files.
type Scan = (Vec<(u32, PathBuf)>, Vec<PathBuf>);

/// Snapshots of one state in a directory on the local file system.
///
/// A store holds an exclusive lock on `<name>.lock` in its directory for as
/// long as it (or a clone) lives: two processes sharing one state directory
/// would each overwrite what the other committed, so the second
/// [`FileStore::open`] fails with [`StoreError::Locked`], naming the holder.
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    name: String,
    hook: Option<Hook>,
    /// The locked `<name>.lock`; the lock goes with the last clone. `None`
    /// for a store opened [read only](FileStore::open_read_only).
    lock: Option<Arc<File>>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .finish()
    }
}

/// Locks `path` for this process and writes who holds it; or names the
/// process that does.
fn take_lock(path: &Path) -> Result<File, StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io("open the lock file", path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "another process".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", path)(e)),
    }
    let host = fs::read_to_string("/etc/hostname").unwrap_or_default();
    let holder = format!(
        "process {} on {} since unix time {}",
        std::process::id(),
        host.trim(),
        crate::clock::now_ms() / 1000
    );
    file.set_len(0)
        .and_then(|()| file.write_all(holder.as_bytes()))
        .map_err(io("write the lock file", path))?;
    Ok(file)
}

pub(super) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl FileStore {
    /// A store for the state called `name` in `dir`, created if missing.
    ///
    /// `name` must be what the state's `Versioned::NAME` says, 1 to 255
    /// bytes of letters, digits, `-`, `_` or `.`; it names the files.
    pub fn open(dir: impl Into<PathBuf>, name: &str) -> Result<Self, StoreError> {
        let mut store = Self::open_read_only(dir, name)?;
        let lock = take_lock(&store.dir.join(format!("{name}.lock")))?;
        store.lock = Some(Arc::new(lock));
        Ok(store)
    }

    /// A view of the state called `name` in `dir` that only reads, without
    /// taking the directory's lock: while another process owns the
    /// directory, the next one (a restart-mode successor) prepares its
    /// state from it. Reading removes nothing (unfinished saves, superseded
    /// snapshots stay for the owner), and every save is refused.
    pub fn open_read_only(dir: impl Into<PathBuf>, name: &str) -> Result<Self, StoreError> {
        let dir = dir.into();
        let valid = (1..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(StoreError::Io {
                op: "open a store for an invalid state name in",
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "state name {name:?} must be 1 to 255 letters, digits, '-', '_' or '.'"
                    ),
                ),
            });
        }
        fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        Ok(FileStore {
            dir,
            name: name.to_string(),
            hook: None,
            lock: None,
        })
    }

    /// Refuses a change to a store opened read only.
    fn owned(&self, op: &'static str) -> Result<(), StoreError> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(StoreError::Io {
                op,
                path: self.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the store was opened read only (FileStore::open_read_only)",
                ),
            }),
        }
    }

    /// Calls `hook` at each [`Step`] of every save. Crash tests use it to
    /// stop a process at a chosen point.
    pub fn with_step_hook(mut self, hook: impl Fn(Step) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The directory of this store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name of the state it stores.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn step(&self, step: Step) {
        if let Some(hook) = &self.hook {
            hook(step);
        }
    }

    fn path_of(&self, version: u32) -> PathBuf {
        self.dir.join(format!("{}.v{version}{SUFFIX}", self.name))
    }

    fn rolled_back_path(&self) -> PathBuf {
        self.dir.join(format!("{}{ROLLED_BACK_SUFFIX}", self.name))
    }

    /// The version a rollback ([`FileStore::roll_back`]) took this state
    /// back to. It counts while that version is the one committed: a node
    /// started at its newest version
    /// ([`Node::start_newest`](crate::node::Node::start_newest)) starts
    /// there instead, so restarting the newer binary does not undo the
    /// rollback. Once a newer version is committed the record is stale and
    /// ignored; [`FileStore::clear_rolled_back`] forgets it when the node is
    /// to move forward again in a new process.
    pub fn rolled_back_to(&self) -> Result<Option<u32>, StoreError> {
        let path = self.rolled_back_path();
        match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt {
                    path,
                    detail: format!(
                        "it should hold the version a rollback went back to, and holds {:?}: \
                     remove it to start at the newest version",
                        text.chars().take(40).collect::<String>()
                    ),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Forgets the rollback [`FileStore::rolled_back_to`] records: the
    /// next start at the newest version goes forward again.
    pub fn clear_rolled_back(&self) -> Result<(), StoreError> {
        self.owned("forget a rollback in")?;
        let path = self.rolled_back_path();
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    /// Records that a rollback went back to `version`, durably.
    fn record_rolled_back(&self, version: u32) -> Result<(), StoreError> {
        let path = self.rolled_back_path();
        let tmp = self
            .dir
            .join(format!("{}{ROLLED_BACK_SUFFIX}.tmp", self.name));
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(version.to_string().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("write", &tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        self.sync_dir()
    }

    /// Committed snapshot files of this state, newest first, and leftover
    /// temporary files.
    fn scan(&self) -> Result<Scan, StoreError> {
        let mut committed = Vec::new();
        let mut temporary = Vec::new();
        let prefix = format!("{}.v", self.name);
        for entry in fs::read_dir(&self.dir).map_err(io("list", &self.dir))? {
            let entry = entry.map_err(io("list", &self.dir))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(rest) = file_name.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(v) = rest.strip_suffix(TMP_SUFFIX) {
                if v.parse::<u32>().is_ok() {
                    temporary.push(entry.path());
                }
            } else if let Some(v) = rest.strip_suffix(SUFFIX)
                && let Ok(version) = v.parse::<u32>()
            {
                committed.push((version, entry.path()));
            }
        }
        committed.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        Ok((committed, temporary))
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync directory", &self.dir))
    }

    fn encode(&self, snapshot: &Snapshot) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(8 + 2 + name.len() + 16 + snapshot.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&snapshot.version.to_be_bytes());
        out.extend_from_slice(&snapshot.applied.to_be_bytes());
        out.extend_from_slice(&(snapshot.payload.len() as u64).to_be_bytes());
        let crc = checksum(crc32(0, &out), &snapshot.payload);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&snapshot.payload);
        out
    }

    /// Parses and verifies one snapshot file.
    pub fn read_file(&self, path: &Path) -> Result<Snapshot, StoreError> {
        let mut file = File::open(path).map_err(io("open", path))?;
        let file_len = file.metadata().map_err(io("stat", path))?.len();
        // The header is at most this long; read it first, then the payload
        // straight into its own buffer, so a large snapshot is copied once.
        let mut head = Vec::with_capacity(MAX_HEADER);
        (&mut file)
            .take(MAX_HEADER as u64)
            .read_to_end(&mut head)
            .map_err(io("read", path))?;
        let header = self.parse_header(path, &head)?;
        let available = file_len.saturating_sub(header.len as u64);
        if available < header.payload_len {
            return Err(StoreError::Truncated {
                path: path.to_path_buf(),
                detail: format!(
                    "the payload has {available} of its {} bytes",
                    header.payload_len
                ),
            });
        }
        if available > header.payload_len {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "{} bytes follow the {}-byte payload",
                    available - header.payload_len,
                    header.payload_len
                ),
            });
        }
        let mut payload = Vec::with_capacity(header.payload_len as usize);
        payload.extend_from_slice(&head[header.len.min(head.len())..]);
        let rest = header.payload_len - payload.len() as u64;
        (&mut file)
            .take(rest)
            .read_to_end(&mut payload)
            .map_err(io("read", path))?;
        if payload.len() as u64 != header.payload_len {
            return Err(StoreError::Truncated {
                path: path.to_path_buf(),
                detail: "the file shrank while it was read".into(),
            });
        }
        let actual = checksum(crc32(0, &head[..header.len - 4]), &payload);
        if actual != header.crc {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "checksum {actual:08x} does not match the recorded {:08x}",
                    header.crc
                ),
            });
        }
        Ok(Snapshot {
            version: header.version,
            applied: header.applied,
            payload,
        })
    }

    /// Parses the header at the start of `bytes` (which may hold more).
    fn parse_header(&self, path: &Path, bytes: &[u8]) -> Result<Header, StoreError> {
        let truncated = |detail: &str| StoreError::Truncated {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        };
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                truncated("the file ends inside the magic bytes")
            } else {
                StoreError::Foreign {
                    path: path.to_path_buf(),
                }
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
            });
        }
        let format = *bytes
            .get(8)
            .ok_or_else(|| truncated("the file ends before the format byte"))?;
        if format != FORMAT && format != FORMAT_1 {
            return Err(StoreError::Format {
                path: path.to_path_buf(),
                found: format,
                known: FORMAT,
            });
        }
        let name_len = usize::from(
            *bytes
                .get(9)
                .ok_or_else(|| truncated("the file ends before the name"))?,
        );
        let applied_len = if format == FORMAT_1 { 0 } else { 8 };
        let len = 10 + name_len + 4 + applied_len + 8 + 4;
        if bytes.len() < len {
            return Err(truncated("the file ends inside the header"));
        }
        let name = &bytes[10..10 + name_len];
        if name != self.name.as_bytes() {
            return Err(StoreError::WrongState {
                path: path.to_path_buf(),
                expected: self.name.clone(),
                found: String::from_utf8_lossy(name).into_owned(),
            });
        }
        let at = 10 + name_len;
        let mut version = [0u8; 4];
        version.copy_from_slice(&bytes[at..at + 4]);
        let mut applied = [0u8; 8];
        applied[..applied_len].copy_from_slice(&bytes[at + 4..at + 4 + applied_len]);
        let at = at + 4 + applied_len;
        let mut payload_len = [0u8; 8];
        payload_len.copy_from_slice(&bytes[at..at + 8]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[at + 8..at + 12]);
        Ok(Header {
            version: u32::from_be_bytes(version),
            applied: u64::from_be_bytes(applied),
            payload_len: u64::from_be_bytes(payload_len),
            crc: u32::from_be_bytes(crc),
            len,
        })
    }
}

/// A parsed snapshot header.
struct Header {
    version: u32,
    applied: u64,
    payload_len: u64,
    crc: u32,
    /// Bytes from the start of the file to the payload.
    len: usize,
}

impl SnapshotStore for FileStore {
    fn read(&self) -> Result<Option<(Snapshot, PathBuf)>, StoreError> {
        let (committed, temporary) = self.scan()?;
        let owned = self.lock.is_some();
        // A temporary file is a save that never committed.
        for tmp in temporary.iter().filter(|_| owned) {
            fs::remove_file(tmp).map_err(io("remove unfinished save", tmp))?;
        }
        let Some((version, path)) = committed.first() else {
            return Ok(None);
        };
        let snapshot = self.read_file(path)?;
        if snapshot.version != *version {
            return Err(StoreError::Corrupt {
                path: path.clone(),
                detail: format!(
                    "the file name says v{version}, the header v{}",
                    snapshot.version
                ),
            });
        }
        // Older snapshots outlived a committed upgrade: finish its clean-up.
        for (_, old) in committed[1..].iter().filter(|_| owned) {
            fs::remove_file(old).map_err(io("remove superseded snapshot", old))?;
        }
        Ok(Some((snapshot, path.clone())))
    }

    fn write(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.stage(snapshot)?.commit()?;
        self.remove_superseded(snapshot.version)
    }
}

/// A snapshot written and synced beside the committed one, not yet
/// committed: [`Staged::commit`] makes it the committed snapshot with one
/// rename, however large it is. Dropped uncommitted, it is removed; after a
/// crash, reading the store removes it.
#[derive(Debug)]
pub struct Staged {
    store: FileStore,
    version: u32,
    tmp: PathBuf,
    committed: bool,
}

impl FileStore {
    /// Writes `snapshot` to a temporary file and syncs it, without
    /// committing it: the slow half of a save, which an upgrade does while
    /// the previous version still serves.
    pub fn stage(&self, snapshot: &Snapshot) -> Result<Staged, StoreError> {
        self.owned("save a snapshot in")?;
        self.refuse_downgrade(snapshot.version)?;
        self.write_staged(snapshot)
    }

    /// Commits `snapshot`, of a version older than the committed one, in
    /// its place: a rollback's commit. The older snapshot is written,
    /// synced and renamed beside the newer one (which, being newer, stays
    /// the one read), then the newer one is removed: once that removal is
    /// synced, the older snapshot is the committed one. A crash before
    /// leaves the newer one committed, and reading removes the older.
    pub fn roll_back(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.owned("roll back a snapshot in")?;
        let mut staged = self.write_staged(snapshot)?;
        let path = self.path_of(snapshot.version);
        fs::rename(&staged.tmp, &path).map_err(io("commit (rename)", &path))?;
        staged.committed = true;
        self.step(Step::Renamed);
        self.sync_dir()?;
        self.step(Step::DirSynced);
        // Durable before the commit point, so that a node started at its
        // newest version finds it as soon as the older snapshot counts.
        self.record_rolled_back(snapshot.version)?;
        let (committed, _) = self.scan()?;
        for (_, newer) in committed.iter().filter(|(v, _)| *v > snapshot.version) {
            fs::remove_file(newer).map_err(io("remove the rolled-back snapshot", newer))?;
        }
        self.sync_dir()?;
        // Here the rollback is committed.
        self.step(Step::OldRemoved);
        Ok(())
    }

    fn write_staged(&self, snapshot: &Snapshot) -> Result<Staged, StoreError> {
        let bytes = self.encode(snapshot);
        let tmp = self
            .dir
            .join(format!("{}.v{}{TMP_SUFFIX}", self.name, snapshot.version));
        let staged = Staged {
            store: self.clone(),
            version: snapshot.version,
            tmp,
            committed: false,
        };
        let tmp = &staged.tmp;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(io("create", tmp))?;
        self.step(Step::TempCreated);
        let half = bytes.len() / 2;
        file.write_all(&bytes[..half]).map_err(io("write", tmp))?;
        self.step(Step::HalfWritten);
        file.write_all(&bytes[half..]).map_err(io("write", tmp))?;
        self.step(Step::Written);
        file.sync_all().map_err(io("sync", tmp))?;
        drop(file);
        self.step(Step::Synced);
        Ok(staged)
    }

    /// Removes the committed snapshots older than `version`, once a
    /// snapshot of `version` is committed.
    pub fn remove_superseded(&self, version: u32) -> Result<(), StoreError> {
        self.owned("remove snapshots in")?;
        let (committed, _) = self.scan()?;
        for (older, old) in committed {
            if older < version {
                fs::remove_file(&old).map_err(io("remove superseded snapshot", &old))?;
            }
        }
        self.step(Step::OldRemoved);
        Ok(())
    }

    fn refuse_downgrade(&self, version: u32) -> Result<(), StoreError> {
        let (committed, _) = self.scan()?;
        match committed.first() {
            Some((existing, _)) if *existing > version => Err(StoreError::Downgrade {
                path: self.dir.clone(),
                saving: version,
                existing: *existing,
            }),
            _ => Ok(()),
        }
    }
}

impl Staged {
    /// Commits the staged snapshot: a rename and a directory sync. Snapshots
    /// of older versions stay until [`FileStore::remove_superseded`] (or
    /// the next read): removing a large file takes time that a switch
    /// holding calls back should not spend.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let store = &self.store;
        store.refuse_downgrade(self.version)?;
        let path = store.path_of(self.version);
        fs::rename(&self.tmp, &path).map_err(io("commit (rename)", &path))?;
        self.committed = true;
        store.step(Step::Renamed);
        store.sync_dir()?;
        store.step(Step::DirSynced);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Never committed: nothing refers to it.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Payloads above this size are checksummed in two halves on two threads,
/// so verifying a large snapshot costs less than reading it.
const PARALLEL_OVER: usize = 1 << 20;

/// The CRC of `bytes`, continued from `crc`.
fn checksum(crc: u32, bytes: &[u8]) -> u32 {
    if bytes.len() <= PARALLEL_OVER {
        return crc32(crc, bytes);
    }
    let (front, back) = bytes.split_at(bytes.len() / 2);
    let back_crc = std::thread::scope(|scope| {
        let summing = scope.spawn(|| {
            let mut h = crc32fast::Hasher::new();
            h.update(back);
            h
        });
        let mut front_crc = crc32fast::Hasher::new_with_initial(crc);
        front_crc.update(front);
        // Should the thread have panicked, checksum the back half here.
        let back_crc = summing.join().unwrap_or_else(|_| {
            let mut h = crc32fast::Hasher::new();
            h.update(back);
            h
        });
        front_crc.combine(&back_crc);
        front_crc
    });
    back_crc.finalize()
}

/// CRC-32 (IEEE 802.3), continuing from `crc`.
fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(crc);
    hasher.update(bytes);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parallel_checksum_equals_the_sequential_one() {
        let bytes: Vec<u8> = (0..3 * PARALLEL_OVER + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(checksum(0x1234, &bytes), crc32(0x1234, &bytes));
        assert_eq!(checksum(0, &bytes[..100]), crc32(0, &bytes[..100]));
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    /// A read-only view reads beside the owner, removes nothing, and
    /// refuses every save; a staged snapshot is invisible until committed.
    #[test]
    fn a_read_only_view_reads_beside_the_owner_and_saves_nothing() {
        let dir = std::env::temp_dir().join(format!("upshift-readonly-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let owner = FileStore::open(&dir, "kv").expect("open");
        let at = |version, payload: &[u8]| Snapshot {
            version,
            applied: 0,
            payload: payload.to_vec(),
        };
        owner.write(&at(1, b"one")).expect("write v1");
        let staged = owner.stage(&at(2, b"two")).expect("stage v2");
        let view = FileStore::open_read_only(&dir, "kv").expect("a view");
        let (seen, _) = view.read().expect("read").expect("a snapshot");
        assert_eq!(seen.payload, b"one", "a staged snapshot is not committed");
        assert!(
            dir.join("kv.v2.snap.tmp").exists(),
            "the view removes nothing"
        );
        let refused = view
            .write(&at(2, b"mine"))
            .expect_err("a view does not save");
        assert!(refused.to_string().contains("read only"), "{refused}");
        staged.commit().expect("commit");
        let (seen, _) = view.read().expect("read").expect("a snapshot");
        assert_eq!(seen.payload, b"two");
        assert!(dir.join("kv.v1.snap").exists(), "kept until removed");
        owner.remove_superseded(2).expect("remove");
        assert!(!dir.join("kv.v1.snap").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A rollback records the version it went back to, durably, before its
    /// commit point; the record is forgotten on request, and a record that
    /// does not hold a version is a typed error naming the file.
    #[test]
    fn a_rollback_is_recorded_until_forgotten() {
        let dir = std::env::temp_dir().join(format!("upshift-rolledback-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FileStore::open(&dir, "kv").expect("open");
        let at = |version, payload: &[u8]| Snapshot {
            version,
            applied: 0,
            payload: payload.to_vec(),
        };
        store.write(&at(2, b"two")).expect("write v2");
        assert_eq!(store.rolled_back_to().expect("read"), None);
        store.roll_back(&at(1, b"one")).expect("roll back");
        assert_eq!(store.rolled_back_to().expect("read"), Some(1));
        let (seen, _) = store.read().expect("read").expect("a snapshot");
        assert_eq!(seen.version, 1);
        store.clear_rolled_back().expect("forget");
        assert_eq!(store.rolled_back_to().expect("read"), None);
        store
            .clear_rolled_back()
            .expect("forgetting nothing is fine");
        fs::write(dir.join("kv.rolled-back"), "two").expect("write");
        let e = store.rolled_back_to().expect_err("not a version");
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("kv.rolled-back"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Snapshots written before they recorded journal entries still read,
    /// as holding none.
    #[test]
    fn a_format_1_snapshot_reads_as_applied_0() {
        let dir = std::env::temp_dir().join(format!("upshift-format1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FileStore::open(&dir, "kv").expect("open");
        let payload = b"\x00";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[FORMAT_1, 2]);
        bytes.extend_from_slice(b"kv");
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        let crc = checksum(crc32(0, &bytes), payload);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes.extend_from_slice(payload);
        fs::write(dir.join("kv.v3.snap"), &bytes).expect("write");
        let (snapshot, _) = store.read().expect("read").expect("a snapshot");
        assert_eq!(
            snapshot,
            Snapshot {
                version: 3,
                applied: 0,
                payload: payload.to_vec()
            }
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod large {
    use super::*;

    /// A payload checksummed in halves on two threads: it reads back
    /// whole, and a byte flipped anywhere in it (the first, either side of
    /// the halves' edge, the last) or a file cut short is refused, never
    /// returned.
    #[test]
    fn a_large_snapshot_is_verified_in_both_halves() {
        let dir = std::env::temp_dir().join(format!("upshift-large-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FileStore::open(&dir, "kv").expect("open");
        let payload: Vec<u8> = (0..3 * PARALLEL_OVER + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let snapshot = Snapshot {
            version: 2,
            applied: 9,
            payload,
        };
        store.write(&snapshot).expect("write");
        let path = dir.join("kv.v2.snap");
        let (read, _) = store.read().expect("read").expect("a snapshot");
        assert_eq!(read, snapshot);
        let good = fs::read(&path).expect("bytes");
        let header = good.len() - snapshot.payload.len();
        let half = snapshot.payload.len() / 2;
        for at in [0, half - 1, half, half + 1, snapshot.payload.len() - 1] {
            let mut bad = good.clone();
            bad[header + at] ^= 0x40;
            fs::write(&path, &bad).expect("write");
            match store.read_file(&path) {
                Err(StoreError::Corrupt { detail, .. }) => {
                    assert!(detail.contains("checksum"), "{detail}")
                }
                other => panic!("a flipped byte at {at}: {other:?}"),
            }
        }
        fs::write(&path, &good[..good.len() - 1]).expect("write");
        assert!(matches!(
            store.read_file(&path),
            Err(StoreError::Truncated { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
