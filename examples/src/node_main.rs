//! The key-value node as a process, for restart-mode upgrades: each
//! `kv-node-vN` binary holds the code of versions 1 to N and starts at N,
//! transforming whatever state it finds. In a restart-mode upgrade the node
//! first writes the next binary's path to `<state>/handover`, and
//! `kv-supervisor` starts it beside the running one: it binds the same port
//! (`SO_REUSEPORT`), prepares the new version's state from what the old
//! one committed and journaled (`Node::prepare_newest`, reading only) and
//! then waits for the state directory. The old node then quiesces, goes
//! away and exits with [`RESTART_EXIT_CODE`], which frees the directory; the
//! new one follows the journal written since, commits and serves the
//! connections waiting in its backlog. Without a handover (the file could
//! not be written) the supervisor starts `<state>/next-binary` after the
//! exit, as before.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use upshift::node::{Node, NodeConfig, ReleasePolicy};
use upshift::state::{FileStore, Step, StoreError};
use upshift::upgrade::release::ReleaseKeys;

/// The exit code that asks the supervisor to start `<state>/next-binary`.
pub const RESTART_EXIT_CODE: i32 = 75;

/// The file in the state directory by which a node asks its supervisor to
/// start the next binary beside it (it holds the binary's path).
pub const HANDOVER_FILE: &str = "handover";

/// The file a starting node writes once it has bound its port.
const BOUND_FILE: &str = "bound";

/// Options of a node process, from `--name value` pairs.
#[derive(Debug)]
pub struct Options {
    /// State directory.
    pub state: PathBuf,
    /// Address to serve on.
    pub listen: String,
    /// The coordinator's address; several, comma-separated, when
    /// coordinators share an etcd UDB (the agent follows the leader).
    pub coordinator: String,
    /// The node's id.
    pub id: String,
    /// The node's group.
    pub group: String,
    /// The release keys the node trusts (`release.keys`); with them it
    /// restarts only into signed releases, fetched from `release_source`.
    pub release_keys: Option<PathBuf>,
    /// Where signed binaries are (`sha256-<hex>`).
    pub release_source: Option<PathBuf>,
    /// Mutual TLS: a directory from `upshift keys tls` holding `ca.pem` and
    /// this node's `node-ID.pem` and `.key`, used to call the coordinator
    /// and to serve.
    pub tls: Option<PathBuf>,
    /// Where to serve the node's Prometheus metrics (`/metrics`).
    pub metrics: Option<String>,
}

impl Options {
    /// Parses `--state DIR --listen ADDR --coordinator ADDR --id ID [--group G]
    /// [--release-keys FILE --release-source DIR] [--tls DIR] [--metrics ADDR]`.
    pub fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut map = std::collections::BTreeMap::new();
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            map.insert(name.to_string(), value);
        }
        let mut take = |name: &str| map.remove(name).ok_or_else(|| format!("missing --{name}"));
        Ok(Options {
            state: take("state")?.into(),
            listen: take("listen")?,
            coordinator: take("coordinator")?,
            id: take("id")?,
            group: take("group").unwrap_or_else(|_| "kv".into()),
            release_keys: take("release-keys").ok().map(PathBuf::from),
            release_source: take("release-source").ok().map(PathBuf::from),
            tls: take("tls").ok().map(PathBuf::from),
            metrics: take("metrics").ok(),
        })
    }
}

/// Opens the state directory, waiting while the previous process of a
/// handover still holds it (it frees it when it exits).
async fn open_store(dir: &std::path::Path) -> Result<FileStore, String> {
    let waited = std::time::Instant::now();
    loop {
        match FileStore::open(dir, crate::kv::state::NAME) {
            Err(StoreError::Locked { .. }) if waited.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

/// Runs a node process with the stages of versions 1 to `newest`.
pub async fn run(newest: u32) -> Result<(), String> {
    upshift::logs::init();
    let options = Options::parse(std::env::args().skip(1))?;
    // The port first, shared with the process this one may take over from:
    // connections that reach it wait in its backlog until it serves.
    let addr: std::net::SocketAddr = options
        .listen
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    let listener = upshift::rpc::bind_shared(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
    let stages: Vec<_> = crate::kv::stages()
        .into_iter()
        .filter(|s| s.version() <= newest)
        .collect();
    let began = std::time::Instant::now();
    // While a process handing over to this one still serves: the newest
    // version's state, transformed from what it has committed and journaled.
    let (dir, name) = (options.state.clone(), crate::kv::state::NAME);
    let (stages, prestart) = tokio::task::spawn_blocking(move || {
        let prestart = Node::prepare_newest(&dir, name, &stages);
        (stages, prestart)
    })
    .await
    .map_err(|e| e.to_string())?;
    let prepared = began.elapsed();
    // Tells a process handing over to this one that the port has a
    // listener and this one is ready: it may stop serving now.
    let _ = std::fs::create_dir_all(&options.state);
    let _ = std::fs::write(
        options.state.join(BOUND_FILE),
        std::process::id().to_string(),
    );
    let mut store = open_store(&options.state).await?;
    let locked = began.elapsed();
    if let Some(hook) = crash_once(newest) {
        store = store.with_step_hook(hook);
    }
    let mut config = NodeConfig::new(options.id.clone());
    config.group = options.group.clone();
    config.releases = match (&options.release_keys, &options.release_source) {
        (Some(keys), Some(source)) => Some(ReleasePolicy {
            keys: ReleaseKeys::read(keys).map_err(|e| e.to_string())?,
            source: source.clone(),
            store: options.state.join("releases"),
        }),
        (None, None) => {
            eprintln!(
                "{}: WARNING: no --release-keys: this node restarts into any `file:` binary a publisher names",
                options.id
            );
            None
        }
        _ => return Err("--release-keys and --release-source go together".into()),
    };
    if let Some(dir) = &options.tls {
        let files = upshift::rpc::TlsFiles::in_dir(dir, &format!("node-{}", options.id));
        config.coordinator_tls =
            Some(upshift::rpc::ClientTls::from_files(&files).map_err(|e| format!("--tls: {e}"))?);
        config.server.tls =
            Some(upshift::rpc::ServerTls::from_files(&files).map_err(|e| format!("--tls: {e}"))?);
    } else {
        eprintln!(
            "{}: WARNING: no --tls: this node serves plain TCP and reports to the coordinator unauthenticated",
            options.id
        );
    }
    config.heartbeat = Duration::from_millis(50);
    let next = options.state.join("next-binary");
    config.restart = Some(Arc::new(move |binary: PathBuf| {
        if std::fs::write(&next, binary.display().to_string()).is_ok() {
            std::process::exit(RESTART_EXIT_CODE);
        }
    }));
    // Asks the supervisor to start the next binary now, beside this one,
    // and waits until it has bound the port, so the port always has a
    // listener.
    let (handover, pending, bound) = (
        options.state.join(HANDOVER_FILE),
        options.state.join("handover.tmp"),
        options.state.join(BOUND_FILE),
    );
    // `UPSHIFT_HANDOVER=off` restarts the old way (exit, then start), to
    // compare.
    let handing_over = std::env::var("UPSHIFT_HANDOVER").map_or(true, |v| v != "off");
    config.handover = handing_over.then(|| -> Arc<dyn Fn(PathBuf) + Send + Sync> {
        Arc::new(move |binary: PathBuf| {
            let _ = std::fs::remove_file(&bound);
            let written = std::fs::write(&pending, binary.display().to_string())
                .and_then(|()| std::fs::rename(&pending, &handover));
            if let Err(e) = written {
                eprintln!(
                    "no handover ({e}); the supervisor starts the next binary after this one exits"
                );
                return;
            }
            let asked = std::time::Instant::now();
            while !bound.exists() && asked.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    });
    let node =
        Node::start_newest_prepared(config, store, stages, prestart).map_err(|e| e.to_string())?;
    let listener = node.serve(listener).map_err(|e| e.to_string())?;
    let coordinator: upshift::upgrade::Coordinators = options
        .coordinator
        .parse()
        .map_err(|e| format!("--coordinator: {e}"))?;
    println!(
        "{} at v{} on {}",
        options.id,
        node.version(),
        listener.local_addr()
    );
    // Where a start's time goes: preparing beside the previous process,
    // waiting for the state directory (a handover), then catching up (or
    // loading, replaying and transforming) and committing the state.
    eprintln!(
        "{}: prepared after {prepared:.1?}, state directory after {locked:.1?}, serving after {:.1?}",
        options.id,
        began.elapsed()
    );
    // Bound what a crash in steady state can lose.
    let _checkpoints = node.checkpoint_every(Duration::from_millis(200));
    let _metrics = match &options.metrics {
        Some(addr) => Some(
            node.metrics()
                .serve(addr.as_str())
                .await
                .map_err(|e| format!("--metrics {addr}: {e}"))?,
        ),
        None => None,
    };
    let agent = node.run_agent(coordinator, listener.local_addr().to_string());
    agent.await.map_err(|e| e.to_string())
}

/// `UPSHIFT_CRASH_ONCE=MARKER:STEP:vN` makes the `kv-node-vN` binary abort
/// at `STEP` of a save while the file `MARKER` exists (it is removed first),
/// so a crash test can kill a restart at a chosen point, once.
fn crash_once(newest: u32) -> Option<impl Fn(Step) + Send + Sync + 'static> {
    let spec = std::env::var("UPSHIFT_CRASH_ONCE").ok()?;
    let mut parts = spec.rsplitn(3, ':');
    let (version, step, marker) = (parts.next()?, parts.next()?, parts.next()?);
    if version != format!("v{newest}") {
        return None;
    }
    let step = Step::ALL.into_iter().find(|s| format!("{s:?}") == step)?;
    let marker = PathBuf::from(marker);
    Some(move |at: Step| {
        if at == step && std::fs::remove_file(&marker).is_ok() {
            eprintln!("crashing at {at:?} as asked");
            std::process::abort();
        }
    })
}
