//! The write-ahead journal: every change to a [`Durable`](super::Durable)
//! state is appended here and synced before the call that made it is
//! answered, so a node killed at any moment comes back with every write it
//! acknowledged.
//!
//! One file per state, `<name>.journal`, beside its snapshots:
//!
//! ```text
//! header: magic "USJRNL\r\n" (8) | format (1) | name length (1) | name | version (4) | crc32 of the header (4)
//! entry:  length (4) | crc32 of seq and payload (4) | seq (8) | payload (postcard of the change)
//! ```
//!
//! Entries are numbered from 1 without gaps; a snapshot records the last
//! one it holds ([`Snapshot::applied`](super::Snapshot::applied)), so
//! recovery replays only the entries after it, and a crash between a
//! snapshot's commit and the journal's compaction never applies a change
//! twice. A torn last entry (a crash inside a write nobody was answered
//! for) is cut off; damage before the last entry is an error, never
//! skipped.
//!
//! An upgrade that transforms in the background ([`Follows`](super::Follows))
//! switches versions without rewriting the journal: at the switch the old
//! version's journal becomes `<name>.journal.prev` and the new version's
//! starts empty, numbering on. Until a snapshot of the new version holds
//! everything (the next checkpoint, which removes it), recovery replays
//! the old version's entries in `.prev` through `Follows::follow`, then the
//! new version's. If the switch never committed (the snapshot is still the
//! old version's), `.prev` is moved back and the new journal, which took no
//! entries, is dropped.
//!
//! Group commit: writers append to a buffer and wait; one thread writes the
//! buffer and syncs it, then wakes every writer it covered. Under
//! [`Durability::Window`](super::Durability::Window) it first waits a
//! little for more writers to share the sync.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::StoreError;
use super::file::io;
use crate::sync::lock;

const MAGIC: &[u8; 8] = b"USJRNL\r\n";
const FORMAT: u8 = 1;
/// Length, checksum and sequence number before each entry's payload.
const ENTRY_HEAD: usize = 4 + 4 + 8;
/// No change is this large; a length above it is damage, not data.
const MAX_ENTRY: usize = 64 << 20;

/// What recovery found in a journal file.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The state version its entries were written at.
    pub(crate) version: u32,
    /// `(seq, payload)` of every whole entry, in order.
    pub(crate) entries: Vec<(u64, Vec<u8>)>,
    /// The length of the whole entries; a torn tail is cut off here.
    pub(crate) valid_len: u64,
}

/// The path of state `name`'s journal in `dir`.
pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.journal"))
}

fn header(name: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 2 + name.len() + 8);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn entry(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_be_bytes());
    hasher.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(payload);
}

/// One entry parsed at `at`, or `None` where there is no whole valid one.
fn parse_entry(bytes: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let head = bytes.get(at..at + ENTRY_HEAD)?;
    let len = u32::from_be_bytes(head[0..4].try_into().ok()?) as usize;
    if len > MAX_ENTRY {
        return None;
    }
    let crc = u32::from_be_bytes(head[4..8].try_into().ok()?);
    let seq = u64::from_be_bytes(head[8..16].try_into().ok()?);
    let payload = bytes.get(at + ENTRY_HEAD..at + ENTRY_HEAD + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_be_bytes());
    hasher.update(payload);
    (hasher.finalize() == crc).then_some((seq, payload, at + ENTRY_HEAD + len))
}

/// The path of the previous version's journal, kept after a background
/// upgrade's switch until the next checkpoint.
pub(crate) fn prev_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.journal.prev"))
}

/// Reads state `name`'s journal in `dir`: `None` when there is none.
pub(crate) fn recover(dir: &Path, name: &str) -> Result<Option<Recovered>, StoreError> {
    read(path(dir, name), name)
}

/// Reads the previous version's journal (see [`prev_path`]), if there is one.
pub(crate) fn recover_prev(dir: &Path, name: &str) -> Result<Option<Recovered>, StoreError> {
    read(prev_path(dir, name), name)
}

/// Moves `from` to `to` and syncs the directory, so the move survives a crash.
fn rename_synced(dir: &Path, from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(io("rename", from))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

/// An upgrade's switch did not commit: the previous version's journal,
/// moved aside for it, becomes the journal again (over the new version's,
/// which took no entries).
pub(crate) fn restore(dir: &Path, name: &str) -> Result<(), StoreError> {
    rename_synced(dir, &prev_path(dir, name), &path(dir, name))
}

/// Removes the previous version's journal once a snapshot holds all of it.
fn remove_prev(dir: &Path, name: &str) -> Result<(), StoreError> {
    let prev = prev_path(dir, name);
    match fs::remove_file(&prev) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", &prev)(e)),
    }
}

fn read(path: PathBuf, name: &str) -> Result<Option<Recovered>, StoreError> {
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.clone(),
        detail,
    };
    let head_len = 8 + 2 + name.len() + 4 + 4;
    if bytes.len() < head_len {
        // A journal is created whole (written, synced, renamed), so a short
        // one is damage.
        return Err(corrupt(format!(
            "the journal has {} bytes, less than its header",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(StoreError::Foreign { path });
    }
    if bytes[8] != FORMAT {
        return Err(StoreError::Format {
            path,
            found: bytes[8],
            known: FORMAT,
        });
    }
    let found = &bytes[10..10 + usize::from(bytes[9])];
    if found != name.as_bytes() {
        return Err(StoreError::WrongState {
            path: path.clone(),
            expected: name.to_string(),
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    let crc_at = head_len - 4;
    let recorded = u32::from_be_bytes(bytes[crc_at..head_len].try_into().unwrap_or_default());
    if crc32fast::hash(&bytes[..crc_at]) != recorded {
        return Err(corrupt(
            "the journal's header does not match its checksum".into(),
        ));
    }
    let version = u32::from_be_bytes(bytes[crc_at - 4..crc_at].try_into().unwrap_or_default());
    let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut at = head_len;
    while at < bytes.len() {
        let Some((seq, payload, next)) = parse_entry(&bytes, at) else {
            // Cut off only a torn tail: if a whole entry follows the
            // damage, acknowledged changes are behind it.
            let later = (at + 1..bytes.len()).find(|i| {
                parse_entry(&bytes, *i)
                    .is_some_and(|(s, _, _)| entries.last().is_none_or(|(l, _)| s > *l))
            });
            if let Some(i) = later {
                return Err(corrupt(format!(
                    "the entry at byte {at} is damaged and whole entries follow it (at byte {i}); \
                     restore the state directory from a backup"
                )));
            }
            break;
        };
        if let Some((last, _)) = entries.last()
            && seq != last + 1
        {
            return Err(corrupt(format!(
                "entry {seq} at byte {at} follows entry {last}: entries are missing"
            )));
        }
        entries.push((seq, payload.to_vec()));
        at = next;
    }
    Ok(Some(Recovered {
        version,
        entries,
        valid_len: at as u64,
    }))
}

/// How far the journal is durable, and whether it failed.
#[derive(Debug, Clone, Default)]
struct Mark {
    synced: u64,
    failed: Option<Arc<str>>,
}

struct Pending {
    /// Entries appended and not yet handed to the writer thread.
    buf: Vec<u8>,
    /// The last sequence number given out.
    last: u64,
    failed: Option<Arc<str>>,
    /// Whether the file is this version's journal (see `open`).
    started: bool,
    closed: bool,
}

struct Shared {
    dir: PathBuf,
    name: String,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The open journal file; the writer thread and compaction share it.
    file: Mutex<File>,
    mark: watch::Sender<Mark>,
    window: Duration,
}

/// An open journal with its writer thread. Dropping the last handle stops
/// the thread once it has written what was appended, and waits for it.
#[derive(Clone)]
pub(crate) struct Journal {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

/// Closes the writer thread when the last [`Journal`] goes (the thread
/// holds the shared part, not a handle), and joins it: the state's
/// directory lock goes with the store after this, so a store opened again
/// in this process (a node started again after it was dropped) must find
/// no writer of the old one still appending to the file it recovers from —
/// both would write the same sequence numbers, and the journal would read
/// as corrupt at the next start.
struct Closer {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Closer {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_all();
        if let Some(writer) = self.writer.take() {
            // At most the one sync under way and the last entries appended.
            let _ = writer.join();
        }
    }
}

impl Journal {
    /// Opens state `name`'s journal in `dir` for appending after entry
    /// `last`: the file found by [`recover`] (cut to `valid_len`), or a new
    /// one at `version`.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        version: u32,
        last: u64,
        found: Option<&Recovered>,
        replace: bool,
        window: Duration,
    ) -> Result<Journal, StoreError> {
        let path = path(dir, name);
        let started = replace || found.is_none_or(|r| r.version == version);
        let file = match found {
            // Kept as it is until `restart_at`: it may hold the only copy
            // of changes the committed snapshot does not.
            Some(_) if !started => OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io("open", &path))?,
            Some(r) if r.version == version => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io("open", &path))?;
                file.set_len(r.valid_len)
                    .and_then(|()| file.sync_all())
                    .map_err(io("cut the torn tail of", &path))?;
                file
            }
            _ => create(dir, name, version, &[])?,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                last,
                failed: None,
                started,
                closed: false,
            }),
            wake: Condvar::new(),
            file: Mutex::new(file),
            mark: watch::Sender::new(Mark {
                synced: last,
                failed: None,
            }),
            window,
        });
        let writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name(format!("upshift-journal-{name}"))
            .spawn(move || write_loop(&writer))
            .map_err(io("start the journal thread for", &path))?;
        Ok(Journal {
            _closer: Arc::new(Closer {
                shared: shared.clone(),
                writer: Some(writer),
            }),
            shared,
        })
    }

    /// Appends an entry after the last one; its sequence number, or why the
    /// journal takes no more.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<u64, Arc<str>> {
        let mut p = lock(&self.shared.pending);
        if let Some(failed) = &p.failed {
            return Err(failed.clone());
        }
        if !p.started {
            return Err("the journal starts once the upgraded state is committed".into());
        }
        p.last += 1;
        let seq = p.last;
        entry(seq, payload, &mut p.buf);
        if crate::sync::inline() {
            // Simulated: written and synced here (the thread is never woken).
            let (buf, last) = (std::mem::take(&mut p.buf), p.last);
            drop(p);
            write_synced(&self.shared, &buf, last);
            return Ok(seq);
        }
        drop(p);
        self.shared.wake.notify_one();
        Ok(seq)
    }

    /// Waits until entry `seq` is synced.
    pub(crate) async fn synced(&self, seq: u64) -> Result<(), Arc<str>> {
        let mut rx = self.shared.mark.subscribe();
        let mark = rx
            .wait_for(|m| m.synced >= seq || m.failed.is_some())
            .await
            .map(|m| m.clone())
            .unwrap_or_else(|_| Mark {
                synced: 0,
                failed: Some("the journal closed".into()),
            });
        match mark.failed {
            Some(why) if mark.synced < seq => Err(why),
            _ => Ok(()),
        }
    }

    /// Why the journal takes no more entries, once it failed.
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        lock(&self.shared.pending).failed.clone()
    }

    /// Stops taking entries: every later append and wait fails with `why`
    /// (a failed checkpoint does this, so the node stops acknowledging).
    pub(crate) fn fail(&self, why: &str) {
        fail(&self.shared, why.into());
    }

    /// Drops the entries up to `upto` (a committed snapshot holds them):
    /// the rest is copied into a new file that replaces this one, and the
    /// previous version's journal, all of which the snapshot holds, goes.
    ///
    /// The copy is made while writers go on appending; the writer thread
    /// waits only while the few entries appended since are copied too and
    /// the new file takes the old one's place, so a compaction costs
    /// writers the same whatever the journal's length.
    pub(crate) fn compact(&self, version: u32, upto: u64) -> Result<(), StoreError> {
        let (dir, name) = (self.shared.dir.as_path(), self.shared.name.as_str());
        let Some(found) = recover(dir, name)? else {
            return remove_prev(dir, name);
        };
        let mut rest = Vec::new();
        for (seq, payload) in found.entries.iter().filter(|(s, _)| *s > upto) {
            entry(*seq, payload, &mut rest);
        }
        let copy = Copy::start(dir, name, version, &rest)?;
        let mut file = lock(&self.shared.file);
        // The writer wrote whole entries only, after what was read above
        // (which may have ended inside one it was writing then).
        let path = path(dir, name);
        let mut tail = Vec::new();
        File::open(&path)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(found.valid_len))?;
                f.read_to_end(&mut tail)
            })
            .map_err(io("read", &path))?;
        *file = copy.finish(&tail)?;
        remove_prev(dir, name)
    }

    /// Starts an empty journal at `version` (after a committed upgrade; the
    /// node is quiesced, so nothing is pending).
    pub(crate) fn restart_at(&self, version: u32) -> Result<(), StoreError> {
        let mut file = lock(&self.shared.file);
        *file = create(&self.shared.dir, &self.shared.name, version, &[])?;
        lock(&self.shared.pending).started = true;
        remove_prev(&self.shared.dir, &self.shared.name)
    }

    /// Moves this journal aside as the previous version's (a background
    /// upgrade's switch; it takes no more entries). Its writer keeps the
    /// open file, so entries still being synced land in it.
    pub(crate) fn retire(&self) -> Result<(), StoreError> {
        let (dir, name) = (&self.shared.dir, &self.shared.name);
        rename_synced(dir, &path(dir, name), &prev_path(dir, name))
    }

    /// Whether a previous version's journal is still kept beside this one.
    pub(crate) fn has_prev(&self) -> bool {
        prev_path(&self.shared.dir, &self.shared.name).exists()
    }

    /// Where the journal lives: its directory and state name.
    pub(crate) fn place(&self) -> (&Path, &str) {
        (&self.shared.dir, &self.shared.name)
    }
}

fn fail(shared: &Shared, why: Arc<str>) {
    let mut p = lock(&shared.pending);
    if p.failed.is_none() {
        p.failed = Some(why.clone());
    }
    drop(p);
    shared.mark.send_modify(|m| {
        if m.failed.is_none() {
            m.failed = Some(why);
        }
    });
}

/// Writes a journal with `entries` (already framed) to a temporary file,
/// syncs it and renames it into place: the old one stays whole until then.
fn create(dir: &Path, name: &str, version: u32, entries: &[u8]) -> Result<File, StoreError> {
    Copy::start(dir, name, version, entries)?.finish(&[])
}

/// A journal being written to its temporary file, not yet in place.
struct Copy<'a> {
    dir: &'a Path,
    name: &'a str,
    tmp: PathBuf,
    file: File,
}

impl<'a> Copy<'a> {
    /// Writes the header and `entries` to `<name>.journal.tmp` and syncs them.
    fn start(
        dir: &'a Path,
        name: &'a str,
        version: u32,
        entries: &[u8],
    ) -> Result<Self, StoreError> {
        let tmp = dir.join(format!("{name}.journal.tmp"));
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&header(name, version))
            .and_then(|()| file.write_all(entries))
            // Synced here, so `finish` syncs only what it adds.
            .and_then(|()| file.sync_data())
            .map_err(io("write", &tmp))?;
        Ok(Copy {
            dir,
            name,
            tmp,
            file,
        })
    }

    /// Appends `more`, syncs, renames the copy into place and opens it for
    /// appending.
    fn finish(mut self, more: &[u8]) -> Result<File, StoreError> {
        self.file
            .write_all(more)
            .and_then(|()| self.file.sync_all())
            .map_err(io("write", &self.tmp))?;
        let path = path(self.dir, self.name);
        fs::rename(&self.tmp, &path).map_err(io("rename into place", &path))?;
        sync_dir(self.dir)?;
        OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))
    }
}

/// The writer thread: takes what writers appended, writes and syncs it,
/// and tells them.
fn write_loop(shared: &Shared) {
    loop {
        let (buf, last) = {
            let mut p = lock(&shared.pending);
            while p.buf.is_empty() && !p.closed {
                p = shared
                    .wake
                    .wait(p)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if p.buf.is_empty() || p.failed.is_some() {
                return;
            }
            if !shared.window.is_zero() && !p.closed {
                // Let more writers join this sync.
                drop(p);
                std::thread::sleep(shared.window);
                p = lock(&shared.pending);
            }
            (std::mem::take(&mut p.buf), p.last)
        };
        if !write_synced(shared, &buf, last) {
            return;
        }
    }
}

/// Writes and syncs `buf`, whose last entry is `last`, and tells the
/// writers; whether it did (else the journal failed).
fn write_synced(shared: &Shared, buf: &[u8], last: u64) -> bool {
    let written = {
        let mut file = lock(&shared.file);
        file.write_all(buf).and_then(|()| file.sync_data())
    };
    match written {
        Ok(()) => {
            shared.mark.send_modify(|m| m.synced = m.synced.max(last));
            true
        }
        Err(e) => {
            let path = path(&shared.dir, &shared.name);
            let why: Arc<str> = format!(
                "the journal {} could not be written ({e}); the node takes no more writes until it restarts",
                path.display()
            )
            .into();
            tracing::error!("{why}");
            fail(shared, why);
            false
        }
    }
}
