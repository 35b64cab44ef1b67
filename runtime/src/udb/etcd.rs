//! The UDB on etcd, and the election that lets several coordinators share
//! it with one leading.
//!
//! It speaks etcd's v3 JSON gateway (`POST /v3/kv/txn` and friends, served
//! by every etcd since 3.4 on its client port) through the runtime's small
//! HTTP client: no gRPC stack, no protobuf compiler at build time.
//!
//! Layout under the prefix (`/upshift/` unless the URL names another):
//!
//! | key | value |
//! |---|---|
//! | `meta/format` | the records' format, as text (`2`) |
//! | `nodes/<id>` | a node's record (postcard, as in the redb UDB) |
//! | `upgrades/<id, 20 digits>` | an upgrade's record |
//! | `events/<seq, 20 digits>` | one event of the history |
//! | `gates/<id, 20 digits>` | an upgrade's gates and approval (format 3; analysis gates from format 4) |
//! | `leader` | the leading coordinator's address, under its lease |
//!
//! **TLS.** [`EtcdUdb::open_with_tls`] speaks TLS to every endpoint with
//! [`EtcdTls`]: etcd's CA and, when etcd checks its clients
//! (`--client-cert-auth`), the coordinator's certificate — etcdctl's
//! `--cacert`, `--cert` and `--key`. Without it the gateway is plain HTTP,
//! and anyone who can reach etcd's client port can rewrite the UDB: keep
//! that to loopback or a private network.
//!
//! **Fencing.** Only a leader writes, and every write is one etcd
//! transaction that succeeds only if the `leader` key is still the one this
//! coordinator created (its create revision). A leader whose lease expired
//! (it stalled, or lost etcd) finds its key gone or another's in its place,
//! so its writes fail and nothing it decides is recorded: no slot is ever
//! granted by two leaders. Any failed write makes the leader step down
//! ([`Leadership::lost`]): a write whose answer was lost may have been
//! applied, so the next leader starts from what etcd holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Batch, Content, Udb, UdbError};
use crate::http::{self, Body};
use crate::rpc::tls::{self, TlsError};
use crate::sync::lock;
use crate::upgrade::{Event, NodeRecord, UpgradeRecord};

/// The records' format: the same encodings as the redb UDB's format 4.
const FORMAT: u32 = 4;
/// Keys read per range request when loading.
const PAGE: usize = 1_000;
/// etcd keeps every revision until compacted: compact when this many
/// accumulated, keeping the last [`KEEP_REVISIONS`].
const COMPACT_EVERY: i64 = 10_000;
const KEEP_REVISIONS: i64 = 1_000;

/// The UDB on etcd. See the module's documentation for the layout and
/// the fencing; [`EtcdUdb::campaign`] makes it the leader's.
pub struct EtcdUdb {
    etcd: Arc<Etcd>,
    prefix: String,
    /// Set once this coordinator leads: writes are fenced on it.
    fence: Mutex<Option<Fence>>,
    max_txn_ops: usize,
    compacted: AtomicI64,
}

impl std::fmt::Debug for EtcdUdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdUdb")
            .field("url", &self.etcd.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Clone)]
struct Fence {
    /// The create revision of this leader's `leader` key.
    revision: i64,
    lost: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

/// TLS to etcd: the CA that signed etcd's certificate and, when etcd
/// checks its clients, this coordinator's certificate and key.
#[derive(Clone)]
pub struct EtcdTls(http::Tls);

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EtcdTls")
    }
}

impl EtcdTls {
    /// From PEM texts: etcd's CA, and this client's certificate chain and
    /// key if etcd asks for them.
    ///
    /// # Errors
    ///
    /// A text that holds no certificate or key, or a key that does not
    /// match its certificate.
    pub fn from_pem(ca: &[u8], client: Option<(&[u8], &[u8])>) -> Result<Self, TlsError> {
        let client = client.map(|(cert, key)| (cert, key, "the client certificate"));
        Ok(EtcdTls(Arc::new(tls::client_config(
            ca,
            "etcd's CA",
            client,
        )?)))
    }

    /// From files (etcdctl's `--cacert`, `--cert`, `--key`).
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or as [`EtcdTls::from_pem`].
    pub fn from_files(
        ca: &std::path::Path,
        client: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Self, TlsError> {
        let ca = tls::read(ca)?;
        let client = client
            .map(|(cert, key)| Ok::<_, TlsError>((tls::read(cert)?, tls::read(key)?)))
            .transpose()?;
        Self::from_pem(
            &ca,
            client.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
    }
}

impl EtcdUdb {
    /// The records' format (the redb UDB's format 4). A prefix written in
    /// format 2 or 3 is upgraded when opened (only the format changes:
    /// gates are new in 3, analysis gates in 4, and older records read as
    /// they are); one written in a newer format is refused.
    pub const FORMAT: u32 = FORMAT;

    /// Connects to etcd at `url`: `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`
    /// (the prefix `/upshift/` unless given; several coordinator fleets can
    /// share one etcd under different prefixes). Checks the format of what
    /// the prefix holds and records it on a new one. Writing needs
    /// [`campaign`](Self::campaign) first.
    pub fn open(url: &str) -> Result<Self, UdbError> {
        Self::connect(url, None)
    }

    /// The same over TLS: see [`EtcdTls`].
    pub fn open_with_tls(url: &str, tls: EtcdTls) -> Result<Self, UdbError> {
        Self::connect(url, Some(tls.0))
    }

    fn connect(url: &str, tls: Option<http::Tls>) -> Result<Self, UdbError> {
        let (endpoints, prefix) = parse_url(url).map_err(|e| UdbError {
            path: PathBuf::from(url),
            detail: e,
        })?;
        if tls.is_none()
            && let Some(remote) = endpoints.iter().find(|e| !loopback(e))
        {
            tracing::warn!(
                endpoint = %remote,
                "the UDB on etcd is reached over plain HTTP: anyone who can reach etcd can rewrite rollouts; give etcd's CA (--etcd-ca) outside local development"
            );
        }
        let udb = EtcdUdb {
            etcd: Arc::new(Etcd {
                url: url.to_string(),
                tls,
                endpoints,
                next: AtomicUsize::new(0),
                timeout: Duration::from_secs(5),
                conn: Mutex::new(http::KeepAlive::default()),
            }),
            prefix,
            fence: Mutex::new(None),
            max_txn_ops: 128,
            compacted: AtomicI64::new(0),
        };
        udb.check_format()?;
        Ok(udb)
    }

    /// The most operations this UDB puts in one etcd transaction: etcd's
    /// `--max-txn-ops` (128 unless the server was started with more). A
    /// group of requests larger than this is written in several
    /// transactions, each request whole in one.
    pub fn with_max_txn_ops(mut self, max: usize) -> Self {
        self.max_txn_ops = max.max(1);
        self
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn error(&self, what: &str, detail: impl std::fmt::Display) -> UdbError {
        UdbError {
            path: PathBuf::from(&self.etcd.url),
            detail: format!("{what}: {detail}"),
        }
    }

    fn check_format(&self) -> Result<(), UdbError> {
        let key = self.key("meta/format");
        let kvs = self
            .etcd
            .range(&key, None, 1)
            .map_err(|e| self.error("read the format", e))?
            .kvs;
        match kvs.first() {
            Some((_, value, _)) => {
                let text = String::from_utf8_lossy(value);
                match text.trim().parse::<u32>() {
                    Ok(FORMAT) => Ok(()),
                    Ok(old @ (2 | 3)) => {
                        let value = b64(FORMAT.to_string().as_bytes());
                        let put = json!({"key": b64(key.as_bytes()), "value": value});
                        self.etcd
                            .call("/v3/kv/put", &put)
                            .map_err(|e| self.error("upgrade the format", e))?;
                        tracing::info!(%key, "upgraded the etcd UDB from format {old} to {FORMAT}");
                        Ok(())
                    }
                    Ok(newer) if newer > FORMAT => Err(self.error(
                        "open",
                        format!(
                            "{key} says UDB format {newer}, written by a newer upshift; this \
                             coordinator reads format {FORMAT}: run the newer coordinator"
                        ),
                    )),
                    _ => Err(self.error(
                        "open",
                        format!("{key} holds {text:?}, not a UDB format this coordinator knows"),
                    )),
                }
            }
            None => {
                // A new prefix: record the format, unless another
                // coordinator did meanwhile.
                let txn = json!({
                    "compare": [{"target": "CREATE", "key": b64(key.as_bytes()), "create_revision": "0", "result": "EQUAL"}],
                    "success": [{"request_put": {"key": b64(key.as_bytes()), "value": b64(FORMAT.to_string().as_bytes())}}],
                });
                self.etcd
                    .call("/v3/kv/txn", &txn)
                    .map_err(|e| self.error("record the format", e))?;
                Ok(())
            }
        }
    }

    /// The address of the coordinator that leads now, if one does.
    pub fn leader(&self) -> Result<Option<String>, UdbError> {
        let kvs = self
            .etcd
            .range(&self.key("leader"), None, 1)
            .map_err(|e| self.error("read the leader", e))?
            .kvs;
        Ok(kvs
            .first()
            .map(|(_, value, _)| String::from_utf8_lossy(value).into_owned()))
    }

    /// Waits until this coordinator leads, then fences every write on its
    /// leadership. Campaigns with a lease of `lease` (whole seconds, at
    /// least 1), kept alive from now on; whoever holds the `leader` key
    /// leads, and the key goes with its holder's lease. `standing_by` is
    /// told the leader's address each time another one leads. Blocks: call
    /// it from a thread that may wait (`spawn_blocking`).
    ///
    /// A follower takes over within the lease after a leader dies, and at
    /// once after one drops its [`Leadership`] (the lease is revoked).
    pub fn campaign(
        &self,
        address: &str,
        lease: Duration,
        mut standing_by: impl FnMut(&str),
    ) -> Result<Leadership, UdbError> {
        let ttl = lease.as_secs().max(1);
        let granted = self
            .etcd
            .call("/v3/lease/grant", &json!({"TTL": ttl.to_string()}))
            .map_err(|e| self.error("grant a lease", e))?;
        let id = int(&granted["ID"]).ok_or_else(|| self.error("grant a lease", "no lease id"))?;
        let leadership = Leadership::keep_alive(self.etcd.clone(), id, Duration::from_secs(ttl));
        let key = b64(self.key("leader").as_bytes());
        let poll = Duration::from_millis((ttl * 1000 / 4).min(500));
        let mut last_seen = String::new();
        loop {
            if let Some(why) = leadership.lost.borrow().clone() {
                return Err(self.error("campaign", why));
            }
            let txn = json!({
                "compare": [{"target": "CREATE", "key": key, "create_revision": "0", "result": "EQUAL"}],
                "success": [{"request_put": {"key": key, "value": b64(address.as_bytes()), "lease": id.to_string()}}],
                "failure": [{"request_range": {"key": key}}],
            });
            let answer = self
                .etcd
                .call("/v3/kv/txn", &txn)
                .map_err(|e| self.error("campaign", e))?;
            if answer["succeeded"].as_bool() == Some(true) {
                let revision = int(&answer["header"]["revision"])
                    .ok_or_else(|| self.error("campaign", "no revision in the answer"))?;
                self.compacted.store(revision, Ordering::Relaxed);
                *lock(&self.fence) = Some(Fence {
                    revision,
                    lost: leadership.sender.clone(),
                });
                tracing::info!(%address, revision, lease = id, "this coordinator leads");
                return Ok(leadership);
            }
            let holder = answer["responses"][0]["response_range"]["kvs"][0]["value"]
                .as_str()
                .and_then(unb64)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            if holder != last_seen {
                standing_by(&holder);
                last_seen = holder;
            }
            std::thread::sleep(poll);
        }
    }

    fn fence(&self) -> Result<Fence, UdbError> {
        lock(&self.fence).clone().ok_or_else(|| {
            self.error(
                "write",
                "this coordinator does not lead (campaign first): only the leader writes",
            )
        })
    }

    /// Writes one group of requests in one fenced transaction.
    fn write_group(&self, fence: &Fence, batches: &[Batch]) -> Result<i64, String> {
        // etcd refuses a key twice in one transaction: the last change to
        // each key is the one that counts.
        let mut ops: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        for batch in batches {
            for n in &batch.nodes {
                ops.insert(self.key(&format!("nodes/{}", n.info.id)), Some(encode(n)?));
            }
            for id in &batch.forget {
                ops.insert(self.key(&format!("nodes/{id}")), None);
            }
            for u in &batch.upgrades {
                ops.insert(
                    self.key(&format!("upgrades/{:020}", u.id)),
                    Some(encode(u)?),
                );
            }
            for e in &batch.events {
                ops.insert(self.key(&format!("events/{:020}", e.seq)), Some(encode(e)?));
            }
            for (id, record) in &batch.gates {
                ops.insert(self.key(&format!("gates/{id:020}")), Some(encode(record)?));
            }
        }
        let success: Vec<Value> = ops
            .iter()
            .map(|(key, value)| match value {
                Some(value) => {
                    json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(value)}})
                }
                None => json!({"request_delete_range": {"key": b64(key.as_bytes())}}),
            })
            .collect();
        let txn = json!({
            "compare": [{
                "target": "CREATE",
                "key": b64(self.key("leader").as_bytes()),
                "create_revision": fence.revision.to_string(),
                "result": "EQUAL",
            }],
            "success": success,
        });
        let answer = self.etcd.call("/v3/kv/txn", &txn)?;
        if answer["succeeded"].as_bool() != Some(true) {
            return Err(format!(
                "this coordinator no longer leads: the leader key is not the one it created at \
                 revision {} (its lease expired; another coordinator may lead)",
                fence.revision
            ));
        }
        int(&answer["header"]["revision"]).ok_or_else(|| "no revision in the answer".into())
    }

    /// Lets etcd drop old revisions of the UDB's keys, now and then.
    fn compact(&self, revision: i64) {
        let last = self.compacted.load(Ordering::Relaxed);
        if revision - last < COMPACT_EVERY {
            return;
        }
        self.compacted.store(revision, Ordering::Relaxed);
        let to = revision - KEEP_REVISIONS;
        match self
            .etcd
            .call("/v3/kv/compaction", &json!({"revision": to.to_string()}))
        {
            Ok(_) => tracing::debug!(revision = to, "compacted etcd's history"),
            Err(e) => tracing::warn!(error = %e, "etcd did not compact its history"),
        }
    }
}

impl Udb for EtcdUdb {
    fn read_all(&self) -> Result<Content, UdbError> {
        let mut content = Content::default();
        let mut from = self.prefix.clone().into_bytes();
        let end = prefix_end(self.prefix.as_bytes());
        loop {
            let page = self
                .etcd
                .range_bytes(&from, Some(&end), PAGE)
                .map_err(|e| self.error("read", e))?;
            for (key, value, _) in &page.kvs {
                let key = String::from_utf8_lossy(key);
                let rest = key.strip_prefix(&self.prefix).unwrap_or(&key);
                let bad = |e: postcard::Error| self.error(&format!("decode {key}"), e);
                if rest.starts_with("nodes/") {
                    let node: NodeRecord = postcard::from_bytes(value).map_err(bad)?;
                    content.nodes.insert(node.info.id.clone(), node);
                } else if rest.starts_with("upgrades/") {
                    let up: UpgradeRecord = postcard::from_bytes(value).map_err(bad)?;
                    content.upgrades.insert(up.id, up);
                } else if rest.starts_with("events/") {
                    let event: Event = postcard::from_bytes(value).map_err(bad)?;
                    content.events.push(event);
                } else if let Some(id) = rest.strip_prefix("gates/") {
                    let id = id
                        .parse()
                        .map_err(|_| self.error("read", format!("{key}: not an upgrade id")))?;
                    content
                        .gates
                        .insert(id, postcard::from_bytes(value).map_err(bad)?);
                } else if rest != "leader" && rest != "meta/format" {
                    return Err(self.error(
                        "read",
                        format!(
                            "{key} is not a UDB key: does another program write under {}?",
                            self.prefix
                        ),
                    ));
                }
            }
            match (page.more, page.kvs.last()) {
                (true, Some((last, _, _))) => {
                    from = last.clone();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(content)
    }

    fn write(&self, batches: &[Batch]) -> Result<(), UdbError> {
        if batches.iter().all(Batch::is_empty) {
            return Ok(());
        }
        let fence = self.fence()?;
        // Each request whole in one transaction; as many as fit together.
        let mut start = 0;
        while start < batches.len() {
            let mut end = start + 1;
            let mut ops = ops_of(&batches[start]);
            while end < batches.len() && ops + ops_of(&batches[end]) <= self.max_txn_ops {
                ops += ops_of(&batches[end]);
                end += 1;
            }
            match self.write_group(&fence, &batches[start..end]) {
                Ok(revision) => self.compact(revision),
                Err(e) => {
                    let why = format!(
                        "a UDB write failed ({e}); stepping down so that the next leader starts from what etcd holds"
                    );
                    fence.lost.send_replace(Some(why));
                    return Err(self.error("write", e));
                }
            }
            start = end;
        }
        Ok(())
    }
}

fn ops_of(batch: &Batch) -> usize {
    batch.nodes.len()
        + batch.forget.len()
        + batch.upgrades.len()
        + batch.events.len()
        + batch.gates.len()
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(value).map_err(|e| format!("encode: {e}"))
}

/// This coordinator's leadership: its lease, kept alive by a thread of its
/// own. Dropping it revokes the lease, so a follower takes over at once.
#[derive(Debug)]
pub struct Leadership {
    sender: Arc<tokio::sync::watch::Sender<Option<String>>>,
    lost: tokio::sync::watch::Receiver<Option<String>>,
    stop: Option<mpsc::Sender<()>>,
}

impl Leadership {
    fn keep_alive(etcd: Arc<Etcd>, lease: i64, ttl: Duration) -> Self {
        let (sender, lost) = tokio::sync::watch::channel(None);
        let sender = Arc::new(sender);
        let (stop, stopped) = mpsc::channel::<()>();
        let lose = sender.clone();
        let spawned = std::thread::Builder::new()
            .name("upshift-etcd-lease".into())
            .spawn(move || {
                let mut last_ok = Instant::now();
                loop {
                    match stopped.recv_timeout(ttl / 3) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        // Dropped: revoke, so that a follower need not wait out the lease.
                        _ => {
                            let _ = etcd.call("/v3/lease/revoke", &json!({"ID": lease.to_string()}));
                            return;
                        }
                    }
                    match etcd.keep_alive(lease) {
                        Ok(left) if left > 0 => last_ok = Instant::now(),
                        Ok(_) => {
                            lose.send_replace(Some(format!(
                                "the lease {lease} expired: this coordinator was not heard by etcd in time, and another may lead"
                            )));
                            return;
                        }
                        Err(e) if last_ok.elapsed() >= ttl => {
                            lose.send_replace(Some(format!(
                                "etcd has not renewed the lease for longer than it lasts ({e}); another coordinator may lead"
                            )));
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "etcd did not renew the lease; trying again"),
                    }
                }
            });
        if let Err(e) = spawned {
            sender.send_replace(Some(format!("cannot start the lease's thread: {e}")));
        }
        Leadership {
            sender,
            lost,
            stop: Some(stop),
        }
    }

    /// Resolves when this coordinator no longer leads (its lease expired
    /// or could not be renewed, or a write failed), with why. It must then
    /// stop serving: its writes fail from now on.
    pub async fn lost(&mut self) -> String {
        match self.lost.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the lease's keep-alive stopped".into(),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // The thread sees the channel close and revokes the lease.
        self.stop.take();
    }
}

/// A client of etcd's JSON gateway, trying each endpoint in turn.
#[derive(Debug)]
struct Etcd {
    url: String,
    /// TLS to every endpoint, if given.
    tls: Option<http::Tls>,
    endpoints: Vec<String>,
    /// The endpoint that answered last: tried first.
    next: AtomicUsize,
    timeout: Duration,
    /// The connection requests reuse (every request here may be sent
    /// twice: puts of the same values, fenced transactions, reads). The
    /// lease's keep-alive, a stream, takes connections of its own.
    conn: Mutex<http::KeepAlive>,
}

/// One page of a range: (key, value, create revision) and whether more follow.
struct Range {
    kvs: Vec<(Vec<u8>, Vec<u8>, i64)>,
    more: bool,
}

impl Etcd {
    /// POSTs `body` to `path` at the first endpoint that answers.
    fn call(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call_reading(path, body, Body::Whole)
    }

    fn call_reading(&self, path: &str, body: &Value, read: Body) -> Result<Value, String> {
        let body = body.to_string();
        let first = self.next.load(Ordering::Relaxed);
        let mut unreachable = Vec::new();
        for i in 0..self.endpoints.len() {
            let at = (first + i) % self.endpoints.len();
            let endpoint = &self.endpoints[at];
            let sent = match read {
                Body::Whole => lock(&self.conn).post(
                    endpoint,
                    self.tls.as_ref(),
                    path,
                    "application/json",
                    body.as_bytes(),
                    self.timeout,
                ),
                Body::FirstChunk => http::post(
                    endpoint,
                    self.tls.as_ref(),
                    path,
                    "application/json",
                    body.as_bytes(),
                    self.timeout,
                    read,
                ),
            };
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    // etcd serving TLS closes a plain connection unanswered.
                    let hint = if self.tls.is_none()
                        && e.kind() == std::io::ErrorKind::UnexpectedEof
                    {
                        " (if etcd speaks TLS, give its CA: --etcd-ca, and --etcd-cert with --etcd-key if it checks clients)"
                    } else {
                        ""
                    };
                    unreachable.push(format!("{endpoint}: {e}{hint}"));
                    continue;
                }
            };
            self.next.store(at, Ordering::Relaxed);
            let value: Value = serde_json::from_slice(&response.body).map_err(|e| {
                format!(
                    "etcd at {endpoint} answered {path} with what is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                )
            })?;
            if response.status != 200 {
                let message = value["message"].as_str().unwrap_or("no message");
                return Err(format!(
                    "etcd at {endpoint} refused {path} ({}): {message}",
                    response.status
                ));
            }
            return Ok(value);
        }
        Err(format!("etcd unreachable: {}", unreachable.join("; ")))
    }

    fn range(&self, key: &str, end: Option<&[u8]>, limit: usize) -> Result<Range, String> {
        self.range_bytes(key.as_bytes(), end, limit)
    }

    fn range_bytes(&self, key: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Range, String> {
        let mut request = json!({"key": b64(key), "limit": limit.to_string()});
        if let Some(end) = end {
            request["range_end"] = Value::String(b64(end));
        }
        let answer = self.call("/v3/kv/range", &request)?;
        let mut kvs = Vec::new();
        for kv in answer["kvs"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let key = kv["key"].as_str().and_then(unb64);
            // An empty value is left out of the answer.
            let value = kv["value"].as_str().map_or(Some(Vec::new()), unb64);
            let (Some(key), Some(value)) = (key, value) else {
                return Err(format!("etcd answered a range with a malformed pair: {kv}"));
            };
            kvs.push((key, value, int(&kv["create_revision"]).unwrap_or(0)));
        }
        Ok(Range {
            kvs,
            more: answer["more"].as_bool() == Some(true),
        })
    }

    /// Renews `lease`; the seconds it has left (0: it is gone).
    fn keep_alive(&self, lease: i64) -> Result<i64, String> {
        let answer = self.call_reading(
            "/v3/lease/keepalive",
            &json!({"ID": lease.to_string()}),
            Body::FirstChunk,
        )?;
        Ok(int(&answer["result"]["TTL"]).unwrap_or(0))
    }
}

/// Whether an endpoint (`HOST:PORT`) is on this machine.
fn loopback(endpoint: &str) -> bool {
    let host = http::host(endpoint);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` → endpoints and a prefix that
/// begins and ends with `/`.
fn parse_url(url: &str) -> Result<(Vec<String>, String), String> {
    let rest = url.strip_prefix("etcd://").ok_or_else(|| {
        format!("{url:?} is not an etcd URL: etcd://HOST:PORT[,HOST:PORT…][/PREFIX]")
    })?;
    let (hosts, prefix) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/upshift/"),
    };
    let endpoints: Vec<String> = hosts.split(',').map(str::to_string).collect();
    for endpoint in &endpoints {
        let Some((host, port)) = endpoint.rsplit_once(':') else {
            return Err(format!("{url:?}: {endpoint:?} has no port (HOST:PORT)"));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{url:?}: {endpoint:?} is not HOST:PORT"));
        }
    }
    let prefix = format!("/{}/", prefix.trim_matches('/'));
    if prefix == "//" {
        return Err(format!(
            "{url:?}: the prefix is empty; name one (/upshift/ unless given)"
        ));
    }
    Ok((endpoints, prefix))
}

/// The key just past every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every key: etcd's "\0" as a range end.
    vec![0]
}

/// An int64 as etcd's gateway writes it: a string (or, from some, a number).
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding: how the gateway carries bytes.
fn b64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (at, quad) in text.chunks(4).enumerate() {
        let last = at == text.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in quad[..4 - pad].iter().enumerate() {
            let v = ALPHABET.iter().position(|a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_as_the_gateway_writes_it() {
        assert_eq!(b64(b"/upshift/leader"), "L3Vwc2hpZnQvbGVhZGVy");
        assert_eq!(b64(b"addr1"), "YWRkcjE=");
        assert_eq!(b64(b""), "");
        assert_eq!(unb64("YWRkcjE="), Some(b"addr1".to_vec()));
        for bad in ["YWRkcjE", "YW=kcjE=", "YWRk====", "YWR!"] {
            assert_eq!(unb64(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unb64(&b64(&bytes)), Some(bytes));
        }

        #[test]
        fn base64_decoding_never_panics(text in "[A-Za-z0-9+/=!]{0,24}") {
            let _ = unb64(&text);
        }
    }

    #[test]
    fn urls_name_endpoints_and_a_prefix() {
        assert_eq!(
            parse_url("etcd://127.0.0.1:2379"),
            Ok((vec!["127.0.0.1:2379".into()], "/upshift/".into()))
        );
        assert_eq!(
            parse_url("etcd://a:1,b:2/prod/kv"),
            Ok((vec!["a:1".into(), "b:2".into()], "/prod/kv/".into()))
        );
        for bad in [
            "http://a:1",
            "etcd://a",
            "etcd://:1",
            "etcd://a:x",
            "etcd://a:1,/p",
            "etcd://a:1//",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn a_prefix_ends_past_its_keys() {
        assert_eq!(prefix_end(b"/upshift/"), b"/upshift0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
