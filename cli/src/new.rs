//! `upshift new NAME`: a service crate that builds, runs and tests as it
//! is — a v1 interface, its durable state, the service object, a node
//! binary with its coordinator agent and checkpoints, a client with
//! retries, a test that runs a node and calls it, and a README with its
//! commands.

use std::path::{Path, PathBuf};

use crate::Failure;

/// `upshift new`: writes the crate `name` in `dir/name`.
pub fn run(name: &str, dir: &Path, upshift: Option<&Path>) -> Result<(), Failure> {
    let fail = |what: String| Failure(what, 2);
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(fail(format!(
            "{name:?} is not a crate name upshift new takes: lowercase letters, digits, `-` and `_`, starting with a letter"
        )));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(fail(format!(
            "{} exists; choose another name or directory",
            root.display()
        )));
    }
    let names = Names::of(name);
    let dependency = match upshift.map(Path::to_path_buf).or_else(checkout) {
        Some(path) => format!(
            "{{ path = {:?}, features = [\"logs\"] }}",
            path.display().to_string()
        ),
        None => "{ version = \"0.1\", features = [\"logs\"] }".to_string(),
    };
    let files = [
        ("Cargo.toml", cargo_toml(&names, &dependency)),
        ("src/lib.rs", lib_rs(&names)),
        ("src/main.rs", main_rs(&names)),
        ("examples/client.rs", client_rs(&names)),
        ("tests/node.rs", test_rs(&names)),
        ("README.md", readme(&names)),
        (".gitignore", "/target\n/state\n".to_string()),
    ];
    for (file, text) in &files {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(|e| fail(format!("write {}: {e}", path.display())))?;
    }
    // Formatted as `cargo fmt` would (the crate's name decides where its
    // imports sort); without rustfmt the files are valid as written.
    let sources: Vec<PathBuf> = files
        .iter()
        .map(|(file, _)| root.join(file))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&sources)
        .status();
    println!(
        "created {} (service `{}`, v1)",
        root.display(),
        names.service
    );
    println!(
        "  cd {} && cargo test        # runs a node and calls it",
        root.display()
    );
    println!("  see README.md to run a node with a coordinator");
    Ok(())
}

/// The runtime of the checkout this binary was built from, when it is
/// still there: until upshift is on crates.io, a scaffold depends on it
/// by path.
fn checkout() -> Option<PathBuf> {
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    runtime
        .join("Cargo.toml")
        .exists()
        .then(|| runtime.canonicalize().unwrap_or(runtime))
}

/// The names a scaffold uses.
struct Names {
    /// The package: `my-counter`.
    package: String,
    /// Its crate in Rust paths: `my_counter`.
    krate: String,
    /// The interface trait and wire name: `MyCounter`.
    service: String,
}

impl Names {
    fn of(name: &str) -> Self {
        let service = name
            .split(['-', '_'])
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or_else(String::new, |f| {
                    f.to_ascii_uppercase().to_string() + c.as_str()
                })
            })
            .collect();
        Names {
            package: name.to_string(),
            krate: name.replace('-', "_"),
            service,
        }
    }

    /// `text` with `{package}`, `{krate}` and `{Service}` filled in.
    fn fill(&self, text: &str) -> String {
        text.replace("{package}", &self.package)
            .replace("{krate}", &self.krate)
            .replace("{Service}", &self.service)
    }
}

fn cargo_toml(n: &Names, dependency: &str) -> String {
    n.fill(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"

[dependencies]
upshift = DEPENDENCY
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread", "signal", "time"] }

# A crate of its own, even inside another workspace's directory.
[workspace]
"#,
    )
    .replace("DEPENDENCY", dependency)
}

fn lib_rs(n: &Names) -> String {
    n.fill(
        r#"//! {package}: a service upgraded with upshift.
//!
//! Every version of the interface and of the state is declared here, each
//! written out whole. To add v2, run `upshift new-version`: it copies v1 as
//! v2 (interface, state, object, journaled change, stage) and writes the
//! empty past and future SOs. Then change v2, build, and write what the
//! compiler asks for (the SO methods of changed methods, the rules of
//! changed fields).

use upshift::state::{Durable, Journaled};

#[upshift::interface]
pub mod interface {
    /// v1: named counters.
    #[version(1)]
    pub trait {Service} {
        /// Adds `n` to the counter `name`; returns its new value.
        async fn add(&self, name: String, n: u64) -> u64;
        /// The counter `name` (0 if it was never added to).
        async fn get(&self, name: String) -> u64;
    }
}

#[upshift::state(name = "{package}")]
pub mod state {
    use std::collections::BTreeMap;

    /// v1: each counter's value.
    #[version(1)]
    #[derive(Debug, Clone, Default)]
    pub struct Counters {
        pub values: BTreeMap<String, u64>,
    }
}

/// A change to v1 state, as the journal records it before the call is
/// answered (a node killed at any moment loses no acknowledged change).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, upshift::Schema)]
pub enum ChangeV1 {
    /// Adds `n` to the counter `name`.
    Add { name: String, n: u64 },
}

impl Journaled for state::v1::Counters {
    type Change = ChangeV1;
    /// The counter's new value.
    type Output = u64;

    fn apply(&mut self, change: ChangeV1) -> u64 {
        match change {
            ChangeV1::Add { name, n } => {
                let value = self.values.entry(name).or_default();
                *value = value.saturating_add(n);
                *value
            }
        }
    }
}

/// The v1 service object: it holds the state.
#[derive(Debug, Clone)]
pub struct ObjectV1 {
    state: Durable<state::v1::Counters>,
}

impl interface::v1::{Service} for ObjectV1 {
    async fn add(&self, name: String, n: u64) -> u64 {
        self.state.write(ChangeV1::Add { name, n }).await
    }

    async fn get(&self, name: String) -> u64 {
        self.state.read(|s| s.values.get(&name).copied().unwrap_or(0))
    }
}

/// The node's code for each version, oldest first. Build every version
/// but the newest with `service_with_future`, so it also serves callers of
/// newer versions.
pub fn stages() -> Vec<Box<dyn upshift::node::Stage>> {
    use upshift::node::durable_stage;
    vec![Box::new(durable_stage(|s: Durable<state::v1::Counters>| {
        interface::v1::service_with_future(ObjectV1 { state: s })
    }))]
}
"#,
    )
}

fn main_rs(n: &Names) -> String {
    n.fill(
        r#"//! A {package} node: serves the newest version it has, reports to a
//! coordinator, and upgrades when a rollout reaches it.
//!
//! `cargo run -- --id n1 --listen 127.0.0.1:7501 --coordinator 127.0.0.1:7400 --state state/n1`

use std::collections::BTreeMap;
use std::time::Duration;

use upshift::node::{Node, NodeConfig};
use upshift::state::FileStore;
use upshift::upgrade::Coordinators;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    upshift::logs::init();
    let mut options: BTreeMap<String, String> = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let name = flag.strip_prefix("--").ok_or(format!("unexpected argument {flag:?}"))?;
        let value = args.next().ok_or(format!("--{name} needs a value"))?;
        options.insert(name.to_string(), value);
    }
    let mut take = |name: &str, default: &str| options.remove(name).unwrap_or_else(|| default.to_string());
    let id = take("id", "n1");
    let listen = take("listen", "127.0.0.1:7501");
    // One address, or several (comma-separated) when coordinators share an
    // etcd UDB: the agent follows whichever leads.
    let coordinator: Coordinators = take("coordinator", "127.0.0.1:7400").parse()?;
    let state = take("state", &format!("state/{id}"));

    let store = FileStore::open(&state, {krate}::state::NAME)?;
    let node = Node::start_newest(NodeConfig::new(id.clone()), store, {krate}::stages())?;
    let listener = node.listen(listen.as_str()).await?;
    let _agent = node.run_agent(coordinator, listener.local_addr().to_string());
    // Snapshots bound the journal a restart replays.
    let _checkpoints = node.checkpoint_every(Duration::from_secs(60));
    println!("{id} at v{} on {} (state in {state})", node.version(), listener.local_addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
"#,
    )
}

fn client_rs(n: &Names) -> String {
    n.fill(
        r#"//! A v1 client: `cargo run --example client -- 127.0.0.1:7501`. It retries
//! the calls a node did not run (while it switches versions), so an
//! upgrade never shows as an error.

use upshift::{Connection, RetryPolicy};
use {krate}::interface::v1;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7501".into());
    let client = v1::Client::new(Connection::connect(addr.as_str()).await?)
        .with_retry(RetryPolicy::default());
    let value = client.add("visits".into(), 1).await?;
    println!("visits: {value}");
    Ok(())
}
"#,
    )
}

fn test_rs(n: &Names) -> String {
    n.fill(
        r#"//! A node on loopback, called by a v1 client; a restarted node keeps
//! what it acknowledged.

use upshift::node::{Node, NodeConfig};
use upshift::state::FileStore;
use upshift::{Connection, RetryPolicy};
use {krate}::interface::v1;

#[tokio::test]
async fn a_node_answers_and_keeps_what_it_acknowledged() {
    let dir = std::env::temp_dir().join(format!("{package}-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = || {
        let store = FileStore::open(&dir, {krate}::state::NAME).expect("state directory");
        Node::start_newest(NodeConfig::new("n1"), store, {krate}::stages()).expect("start")
    };
    let node = start();
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr()).await.expect("connect");
    let client = v1::Client::new(conn).with_retry(RetryPolicy::default());
    assert_eq!(client.add("a".into(), 2).await.expect("add"), 2);
    assert_eq!(client.add("a".into(), 3).await.expect("add"), 5);
    drop(listener);
    drop(node);

    let again = start();
    let listener = again.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr()).await.expect("connect");
    assert_eq!(v1::Client::new(conn).get("a".into()).await.expect("get"), 5);
    let _ = std::fs::remove_dir_all(&dir);
}
"#,
    )
}

fn readme(n: &Names) -> String {
    n.fill(
        r#"# {package}

A service upgraded without stopping, with upshift (`upshift --help` lists its commands).

Run the tests (a node on loopback, called by a client, restarted):

```sh
cargo test
```

Run a coordinator and a node, and call it:

```sh
upshift coordinator --udb state/udb.redb --listen 127.0.0.1:7400 &
cargo run -- --id n1 --listen 127.0.0.1:7501 --coordinator 127.0.0.1:7400 --state state/n1 &
cargo run --example client -- 127.0.0.1:7501
upshift status
```

Add a version with `upshift new-version` (it copies v1 as v2; change the
copy and write what the compiler asks for; see the notes at the top of
`src/lib.rs`), then publish the upgrade with
`upshift publish --service {Service} --from 1 --to 2`.
Lock released versions with `upshift lock` (the build then refuses to
change them), and prove each upgrade with `upshift::conformance`.
"#,
    )
}
