//! The key-value node as a process, for restart-mode upgrades: each
//! `kv-node-vN` binary holds the code of versions 1 to N and starts at N,
//! transforming whatever state it finds. A restart-mode upgrade ends with
//! the node writing the next binary's path to `<state>/next-binary` and
//! exiting with [`RESTART_EXIT_CODE`], for `kv-supervisor` to start it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use upshift::node::{Node, NodeConfig};
use upshift::state::{FileStore, Step};

/// The exit code that asks the supervisor to start `<state>/next-binary`.
pub const RESTART_EXIT_CODE: i32 = 75;

/// Options of a node process, from `--name value` pairs.
#[derive(Debug)]
pub struct Options {
    /// State directory.
    pub state: PathBuf,
    /// Address to serve on.
    pub listen: String,
    /// The coordinator's address.
    pub coordinator: String,
    /// The node's id.
    pub id: String,
    /// The node's group.
    pub group: String,
}

impl Options {
    /// Parses `--state DIR --listen ADDR --coordinator ADDR --id ID [--group G]`.
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
        })
    }
}

/// Runs a node process with the stages of versions 1 to `newest`.
pub async fn run(newest: u32) -> Result<(), String> {
    upshift::logs::init();
    let options = Options::parse(std::env::args().skip(1))?;
    let mut store =
        FileStore::open(&options.state, crate::kv::state::NAME).map_err(|e| e.to_string())?;
    if let Some(hook) = crash_once(newest) {
        store = store.with_step_hook(hook);
    }
    let mut config = NodeConfig::new(options.id.clone());
    config.group = options.group.clone();
    config.heartbeat = Duration::from_millis(50);
    let next = options.state.join("next-binary");
    config.restart = Some(Arc::new(move |binary: PathBuf| {
        if std::fs::write(&next, binary.display().to_string()).is_ok() {
            std::process::exit(RESTART_EXIT_CODE);
        }
    }));
    let stages = crate::kv::stages()
        .into_iter()
        .filter(|s| s.version() <= newest)
        .collect();
    let node = Node::start_newest(config, store, stages).map_err(|e| e.to_string())?;
    let listener = node
        .listen(options.listen.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let coordinator = options
        .coordinator
        .parse()
        .map_err(|e| format!("--coordinator: {e}"))?;
    println!(
        "{} at v{} on {}",
        options.id,
        node.version(),
        listener.local_addr()
    );
    // Bound what a crash in steady state can lose.
    let _checkpoints = node.checkpoint_every(Duration::from_millis(200));
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
