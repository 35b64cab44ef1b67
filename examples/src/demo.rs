//! The main demo as a library, so the disruption benchmark runs the same
//! scenario: a coordinator with an embedded UDB, key-value nodes on loopback
//! at v1, and clients of v1, v2 and v3 writing and reading all the time. It
//! publishes v1 -> v2 (rolling, one node at a time, health-gated), then
//! v2 -> v3, shows progress, and reads back every acknowledged write.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upshift::Listener;
use upshift::coordinator::{Coordinator, api};
use upshift::node::{Node, NodeConfig};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::state::FileStore;
use upshift::sync::lock;
use upshift::udb::RedbUdb;
use upshift::upgrade::release::{Release, ReleaseKeys, SigningKey};
use upshift::upgrade::{RolloutState, Upgrade};
use upshift::{CallError, Connection, RetryPolicy};

use crate::kv::interface::{v1, v2, v3};

/// How to run the scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// Key-value nodes.
    pub nodes: usize,
    /// Load before the first upgrade is published.
    pub steady: Duration,
    /// Health-gate time between nodes.
    pub healthy_secs: u64,
    /// Print progress lines.
    pub progress: bool,
    /// Restart mode: run each node as a `kv-supervisor` process over the
    /// `kv-node-vN` binaries in this directory, and upgrade by restarting
    /// into checksummed binaries. `None` upgrades in process.
    pub restart_binaries: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 5,
            steady: Duration::from_secs(1),
            healthy_secs: 1,
            progress: true,
            restart_binaries: None,
        }
    }
}

/// Successful calls by route: a client's version against the node's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Served {
    /// Same version: the service object answered.
    pub object: u64,
    /// An older client: a chain of past SOs answered.
    pub past_so: u64,
    /// A newer client: a chain of future SOs answered.
    pub future_so: u64,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed, as `what: error`.
    pub failures: Vec<String>,
    /// Successful calls by how the node served them.
    pub served: Served,
    /// Latencies of calls before the first upgrade, sorted.
    pub before: Vec<Duration>,
    /// Latencies of calls during the upgrades, sorted.
    pub during: Vec<Duration>,
    /// Per node: how its upgrades went.
    pub nodes: Vec<NodeReport>,
    /// Acknowledged writes read back.
    pub checked: usize,
    /// Acknowledged writes missing or changed.
    pub missing: Vec<String>,
    /// Why a rollout did not finish, if one did not.
    pub rollout_error: Option<String>,
    /// Restart mode: the node killed with SIGKILL under load during the
    /// rollout, and the calls the kill cut (their outcome unknown to the
    /// caller, so never acknowledged, and not counted as failed).
    pub killed: Option<(String, u64)>,
}

/// One node's part of a [`Report`].
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node's id.
    pub id: String,
    /// The version it ended at.
    pub version: u32,
    /// Each upgrade: the version reached and how long the node held calls
    /// back (measured by the node in process; empty in restart mode).
    pub pauses: Vec<(u32, Duration)>,
    /// The longest call its clients made while the rollout ran, retries
    /// included: what a caller saw of its upgrades, in either mode.
    pub slowest_call: Duration,
}

impl Report {
    /// Whether both upgrades finished on every node with no failed call and
    /// nothing lost.
    pub fn ok(&self) -> bool {
        self.rollout_error.is_none()
            && self.failures.is_empty()
            && self.missing.is_empty()
            && self.nodes.iter().all(|n| n.version == 3)
    }
}

/// What the clients observed.
#[derive(Default)]
struct Observed {
    calls: AtomicU64,
    failed: AtomicU64,
    /// Calls to the killed node that the kill cut.
    cut: AtomicU64,
    object: AtomicU64,
    past_so: AtomicU64,
    future_so: AtomicU64,
    failures: Mutex<Vec<String>>,
    latencies: Mutex<(Vec<Duration>, Vec<Duration>)>, // before, during
    slowest_during: Mutex<BTreeMap<usize, Duration>>, // by node
    acked: Mutex<BTreeMap<usize, Vec<(String, String)>>>,
}

enum Phase {
    Before,
    During,
    After,
}

struct Shared {
    observed: Observed,
    phase: Mutex<Phase>,
    stop: AtomicBool,
    show: bool,
    /// The node killed with SIGKILL, and when.
    killed: Mutex<Option<(usize, Instant)>>,
}

impl Shared {
    /// Whether `error` on `node` is a call the SIGKILL cut: one that was
    /// under way when the node died, whose outcome its caller cannot know.
    fn cut_by_kill(&self, node: usize, started: Instant, error: &CallError) -> bool {
        let unknown = matches!(
            error,
            CallError::ConnectionClosed(_) | CallError::DeadlineExceeded(_)
        );
        unknown
            && lock(&self.killed)
                .is_some_and(|(k, at)| k == node && started <= at + Duration::from_secs(1))
    }

    fn record(
        &self,
        client_version: u32,
        conn: &Connection,
        node: usize,
        started: Instant,
        result: Result<(), CallError>,
        what: &str,
    ) {
        let took = started.elapsed();
        self.observed.calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                let node = conn.node_version().unwrap_or(client_version);
                let o = &self.observed;
                let route = match node.cmp(&client_version) {
                    std::cmp::Ordering::Equal => &o.object,
                    std::cmp::Ordering::Greater => &o.past_so,
                    std::cmp::Ordering::Less => &o.future_so,
                };
                route.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if self.cut_by_kill(node, started, &e) => {
                self.observed.cut.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.observed.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.observed.failures).push(format!("{what}: {e}"));
            }
        }
        let mut lat = lock(&self.observed.latencies);
        match *lock(&self.phase) {
            Phase::Before => lat.0.push(took),
            Phase::During => {
                lat.1.push(took);
                let mut slowest = lock(&self.observed.slowest_during);
                let worst = slowest.entry(node).or_default();
                *worst = (*worst).max(took);
            }
            Phase::After => {}
        }
    }
}

/// A client of `version` writing and reading keys on node `node` until stopped.
async fn client_loop(shared: Arc<Shared>, conn: Connection, node: usize, version: u32) {
    let retry = RetryPolicy::default();
    let deadline = Duration::from_secs(10);
    let c1 = v1::Client::new(conn.clone())
        .with_retry(retry)
        .with_deadline(deadline);
    let c2 = v2::Client::new(conn.clone())
        .with_retry(retry)
        .with_deadline(deadline);
    let c3 = v3::Client::new(conn.clone())
        .with_retry(retry)
        .with_deadline(deadline);
    let mut i = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let (key, value) = (
            format!("n{node}-c{version}-{i}"),
            format!("value {i} from a v{version} client"),
        );
        let started = Instant::now();
        let put = match version {
            1 => c1.put(key.clone(), value.clone()).await,
            2 => c2.put(key.clone(), value.clone(), None).await,
            _ => c3.put(key.clone(), value.clone(), None).await,
        };
        let ok = put.is_ok();
        shared.record(
            version,
            &conn,
            node,
            started,
            put,
            &format!("v{version} put {key}"),
        );
        if ok {
            lock(&shared.observed.acked)
                .entry(node)
                .or_default()
                .push((key.clone(), value));
        }
        let started = Instant::now();
        let get = match version {
            1 => c1.get(key.clone()).await.map(drop),
            2 => c2.get(key.clone()).await.map(drop),
            _ => c3.get(key.clone()).await.map(drop),
        };
        shared.record(
            version,
            &conn,
            node,
            started,
            get,
            &format!("v{version} get {key}"),
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The `p` quantile (0 to 1) of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Node versions as the coordinator reports them.
async fn versions(operator: &api::v3::Client) -> BTreeMap<String, u32> {
    let status = operator.status().await.unwrap_or_default();
    status
        .nodes
        .values()
        .map(|n| (n.info.id.clone(), n.info.version))
        .collect()
}

async fn progress(start: Instant, label: &str, operator: &api::v3::Client, shared: &Shared) {
    if !shared.show {
        return;
    }
    let mut versions = BTreeMap::new();
    for v in self::versions(operator).await.into_values() {
        *versions.entry(v).or_insert(0) += 1;
    }
    let versions: Vec<String> = versions.iter().map(|(v, n)| format!("v{v}:{n}")).collect();
    let o = &shared.observed;
    println!(
        "[{:>5.1}s] {label:<28} nodes {:<16} calls {:>6} (object {:>6}, past SO {:>6}, future SO {:>6})  failed {}",
        start.elapsed().as_secs_f64(),
        versions.join(" "),
        o.calls.load(Ordering::Relaxed),
        o.object.load(Ordering::Relaxed),
        o.past_so.load(Ordering::Relaxed),
        o.future_so.load(Ordering::Relaxed),
        o.failed.load(Ordering::Relaxed),
    );
}

async fn roll_out(
    operator: &api::v3::Client,
    from: u32,
    start: Instant,
    shared: &Shared,
    options: &Options,
    releases: Option<&Releases>,
) -> Result<(), String> {
    let healthy_secs = options.healthy_secs;
    let artifact = match (&options.restart_binaries, releases) {
        (Some(dir), Some(releases)) => {
            releases.sign(&dir.join(format!("kv-node-v{}", from + 1)), from + 1)?
        }
        _ => "in-process".to_string(),
    };
    let schedule = ScheduleSpec::All(vec![
        ScheduleSpec::Rolling { max_parallel: 1 },
        ScheduleSpec::HealthGate { healthy_secs },
    ]);
    let def = Upgrade {
        service: "Kv".into(),
        from,
        to: from + 1,
        schedule,
        artifact,
        notes: format!("kv v{from} -> v{}", from + 1),
    };
    let id = operator
        .publish(def)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let label = format!("upgrade #{id} v{from}->v{} rolling", from + 1);
    if shared.show {
        println!(
            "published upgrade #{id}: v{from} -> v{}, rolling one node at a time, health-gated",
            from + 1
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        progress(start, &label, operator, shared).await;
        let status = operator.status().await.map_err(|e| e.to_string())?;
        match &status.rollouts[&id].state {
            RolloutState::Final => return Ok(()),
            RolloutState::Halted { reason } => {
                return Err(format!("upgrade #{id} halted: {reason}"));
            }
            RolloutState::Aborted => return Err(format!("upgrade #{id} was aborted")),
            _ if Instant::now() > deadline => {
                return Err(format!("upgrade #{id} did not finish in 60 s"));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the scenario and reports what it measured.
pub async fn run(options: Options) -> Result<Report, Box<dyn std::error::Error>> {
    let say = |line: String| {
        if options.progress {
            println!("{line}");
        }
    };
    let start = Instant::now();
    let dir: PathBuf = std::env::temp_dir().join(format!("upshift-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    say("upshift demo: rolling upgrades of a key-value service under load".into());
    say(format!("state and the UDB live in {}\n", dir.display()));

    // Restart mode runs signed releases only: keys made here, two of three
    // signing each release, trusted by the coordinator and every node.
    let releases = match &options.restart_binaries {
        Some(_) => Some(Releases::generate(&dir)?),
        None => None,
    };
    let udb = RedbUdb::open(dir.join("udb.redb"))?;
    let mut coordinator = Coordinator::open(udb, Registry::default())?;
    if let Some(releases) = &releases {
        coordinator = coordinator.with_release_keys(releases.trusted.clone());
        say(format!(
            "releases signed by 2 of 3 keys in {}",
            releases.dir.display()
        ));
    }
    // Every connection is mutual TLS, with certificates made here: the
    // coordinator's, each node's, the operator's and the clients'.
    let tls = Tls::generate(&dir, options.nodes)?;
    let (_coordinator, coordinator) = coordinator
        .serve_tls("127.0.0.1:0", tls.server("coordinator")?)
        .await?;
    say(format!(
        "coordinator on {} (mutual TLS, certificates in {}; embedded UDB: {})",
        coordinator.local_addr(),
        tls.dir.display(),
        dir.join("udb.redb").display()
    ));
    let operator = api::v3::Client::new(
        tls.connect(coordinator.local_addr(), "operator-demo")
            .await?,
    );

    let cluster = match &options.restart_binaries {
        None => Cluster::in_process(&dir, options.nodes, coordinator.local_addr(), &tls).await?,
        Some(bin) => Cluster::processes(
            &dir,
            bin,
            options.nodes,
            coordinator.local_addr(),
            releases.as_ref(),
            &tls,
        )?,
    };
    for (i, addr) in cluster.addrs.iter().enumerate() {
        say(format!("node{i} at v1 on {addr}"));
    }
    // Wait for every node to register before loading them.
    let registered = Instant::now() + Duration::from_secs(30);
    while versions(&operator).await.len() < options.nodes {
        if Instant::now() > registered {
            return Err("the nodes did not register within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shared = Arc::new(Shared {
        observed: Observed::default(),
        phase: Mutex::new(Phase::Before),
        stop: AtomicBool::new(false),
        show: options.progress,
        killed: Mutex::new(None),
    });
    let mut clients = Vec::new();
    for (i, addr) in cluster.addrs.iter().enumerate() {
        let conn = tls.connect(*addr, "reader-clients").await?;
        for version in 1..=3 {
            clients.push(tokio::spawn(client_loop(
                shared.clone(),
                conn.clone(),
                i,
                version,
            )));
        }
    }
    say(format!(
        "\n{} clients (v1, v2 and v3 on every node) writing and reading\n",
        clients.len()
    ));
    let steady_until = Instant::now() + options.steady;
    while Instant::now() < steady_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        progress(start, "steady at v1", &operator, &shared).await;
    }

    *lock(&shared.phase) = Phase::During;
    // Restart mode: one node dies by SIGKILL under load while the rollout
    // runs; its supervisor starts it again, and nothing it acknowledged may
    // be missing at the end.
    let victim = options.nodes - 1;
    let kill = cluster.pid_file(victim).map(|pid_file| {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
            *lock(&shared.killed) = Some((victim, Instant::now()));
            let killed = Command::new("kill")
                .args(["-9", pid.trim()])
                .status()
                .is_ok_and(|s| s.success());
            if shared.show {
                println!(
                    "killed node{victim} (pid {}) with SIGKILL under load",
                    pid.trim()
                );
            }
            killed
        })
    });
    let rollouts = async {
        roll_out(&operator, 1, start, &shared, &options, releases.as_ref()).await?;
        roll_out(&operator, 2, start, &shared, &options, releases.as_ref()).await
    }
    .await;
    let killed = match kill {
        Some(k) => {
            let killed = k.await.unwrap_or(false);
            if !killed {
                lock(&shared.observed.failures)
                    .push(format!("node{victim} could not be killed with SIGKILL"));
            }
            killed
        }
        None => false,
    };
    *lock(&shared.phase) = Phase::After;
    tokio::time::sleep(Duration::from_millis(300)).await;
    progress(start, "steady at v3", &operator, &shared).await;
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await?;
    }

    let o = &shared.observed;
    let (mut before, mut during) = lock(&o.latencies).clone();
    before.sort();
    during.sort();

    // Read back every acknowledged write through v3 clients.
    let acked = lock(&o.acked).clone();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, addr) in cluster.addrs.iter().enumerate() {
        let reader = v3::Client::new(tls.connect(*addr, "reader-clients").await?)
            .with_retry(RetryPolicy::default());
        for (key, value) in acked.get(&i).into_iter().flatten() {
            checked += 1;
            match reader.get(key.clone()).await? {
                Some(entry) if &entry.value == value => {}
                other => missing.push(format!("node{i} {key}: {other:?}")),
            }
        }
    }
    let nodes = versions(&operator)
        .await
        .into_iter()
        .map(|(id, version)| NodeReport {
            pauses: cluster.pauses(&id),
            slowest_call: (0..cluster.addrs.len())
                .find(|i| format!("node{i}") == id)
                .and_then(|i| lock(&o.slowest_during).get(&i).copied())
                .unwrap_or_default(),
            id,
            version,
        })
        .collect();
    let report = Report {
        calls: o.calls.load(Ordering::Relaxed),
        failures: lock(&o.failures).clone(),
        served: Served {
            object: o.object.load(Ordering::Relaxed),
            past_so: o.past_so.load(Ordering::Relaxed),
            future_so: o.future_so.load(Ordering::Relaxed),
        },
        before,
        during,
        nodes,
        checked,
        missing,
        rollout_error: rollouts.err(),
        killed: killed.then(|| (format!("node{victim}"), o.cut.load(Ordering::Relaxed))),
    };
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// The nodes under load: in this process, or supervised processes.
struct Cluster {
    addrs: Vec<SocketAddr>,
    in_process: Vec<(Node, Listener)>,
    supervisors: Vec<(Child, PathBuf)>,
}

/// The demo's certificates: a development CA, and one certificate for the
/// coordinator, each node, the operator and the clients.
struct Tls {
    dir: PathBuf,
}

impl Tls {
    fn generate(dir: &Path, nodes: usize) -> Result<Self, Box<dyn std::error::Error>> {
        use upshift::rpc::{Identity, Role, tls::dev::DevCa};
        let dir = dir.join("certs");
        let ca = DevCa::open_or_create(&dir)?;
        let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
        let mut issued = vec![
            (
                "coordinator".to_string(),
                Identity::new(Role::Coordinator, "demo"),
            ),
            (
                "operator-demo".to_string(),
                Identity::new(Role::Operator, "demo"),
            ),
            (
                "reader-clients".to_string(),
                Identity::new(Role::Reader, "clients"),
            ),
        ];
        for i in 0..nodes {
            issued.push((
                format!("node-node{i}"),
                Identity::new(Role::Node, format!("node{i}")),
            ));
        }
        for (file, identity) in &issued {
            ca.issue(&dir, file, identity, &hosts)?;
        }
        Ok(Tls { dir })
    }

    fn files(&self, name: &str) -> upshift::rpc::TlsFiles {
        upshift::rpc::TlsFiles::in_dir(&self.dir, name)
    }

    fn server(&self, name: &str) -> Result<upshift::rpc::ServerTls, upshift::rpc::TlsError> {
        upshift::rpc::ServerTls::from_files(&self.files(name))
    }

    fn client(&self, name: &str) -> Result<upshift::rpc::ClientTls, upshift::rpc::TlsError> {
        upshift::rpc::ClientTls::from_files(&self.files(name))
    }

    /// A connection to `addr` with the certificate `name`.
    async fn connect(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<Connection, Box<dyn std::error::Error>> {
        let config = upshift::ClientConfig {
            tls: Some(self.client(name)?),
            ..upshift::ClientConfig::default()
        };
        Ok(Connection::connect_with(addr, config).await?)
    }
}

/// The demo's release keys and release source (restart mode).
struct Releases {
    dir: PathBuf,
    keys: Vec<SigningKey>,
    trusted: ReleaseKeys,
}

impl Releases {
    /// Three new keys in `<dir>/keys`, of which two must sign.
    fn generate(dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate()).collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(SigningKey::public).collect();
        let trusted = ReleaseKeys::new(2, &publics)?;
        let dir = dir.join("keys");
        std::fs::create_dir_all(dir.join("source"))?;
        std::fs::write(dir.join("release.keys"), trusted.to_file())?;
        Ok(Releases { dir, keys, trusted })
    }

    fn node_args(&self) -> Vec<String> {
        vec![
            "--release-keys".into(),
            self.dir.join("release.keys").display().to_string(),
            "--release-source".into(),
            self.dir.join("source").display().to_string(),
        ]
    }

    /// Signs `binary` as the release of `version` (its sequence number),
    /// puts it in the release source, and returns the artifact string.
    fn sign(&self, binary: &Path, version: u32) -> Result<String, String> {
        let expires_ms = upshift::clock::now_ms() + 3_600_000;
        let release = Release::for_binary(binary, "Kv", version, u64::from(version), expires_ms)
            .and_then(|r| r.add_to_source(binary, &self.dir.join("source")).map(|_| r))
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        release
            .sign(&[&self.keys[0], &self.keys[2]])
            .map_err(|e| e.to_string())
    }
}

/// Where node process `i` logs: `$UPSHIFT_DEMO_LOGS/node<i>.log`, or nowhere.
fn node_log(i: usize) -> std::io::Result<Stdio> {
    match std::env::var_os("UPSHIFT_DEMO_LOGS") {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::File::create(Path::new(&dir).join(format!("node{i}.log")))?;
            Ok(Stdio::from(file))
        }
        None => Ok(Stdio::null()),
    }
}

impl Cluster {
    fn empty() -> Self {
        Cluster {
            addrs: Vec::new(),
            in_process: Vec::new(),
            supervisors: Vec::new(),
        }
    }

    async fn in_process(
        dir: &Path,
        count: usize,
        coordinator: SocketAddr,
        tls: &Tls,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut cluster = Cluster::empty();
        for i in 0..count {
            let store = FileStore::open(dir.join(format!("node{i}")), crate::kv::state::NAME)?;
            let mut config = NodeConfig::new(format!("node{i}"));
            config.heartbeat = Duration::from_millis(50);
            let certificate = format!("node-node{i}");
            config.coordinator_tls = Some(tls.client(&certificate)?);
            config.server.tls = Some(tls.server(&certificate)?);
            let node = Node::start(config, store, crate::kv::stages(), 1)?;
            let listener = node.listen("127.0.0.1:0").await?;
            node.run_agent(coordinator, listener.local_addr().to_string());
            cluster.addrs.push(listener.local_addr());
            cluster.in_process.push((node, listener));
        }
        Ok(cluster)
    }

    /// Node `i`'s logs: `$UPSHIFT_DEMO_LOGS/node<i>.log` when that names a
    /// directory (where a restart's time goes, phase by phase), else none.
    fn processes(
        dir: &Path,
        bin: &Path,
        count: usize,
        coordinator: SocketAddr,
        releases: Option<&Releases>,
        tls: &Tls,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut cluster = Cluster::empty();
        for i in 0..count {
            // A free port, chosen now so restarted processes can bind it again.
            let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let state = dir.join(format!("node{i}"));
            let child = Command::new(bin.join("kv-supervisor"))
                .arg(bin.join("kv-node-v1"))
                .args([
                    "--state",
                    &state.display().to_string(),
                    "--listen",
                    &addr.to_string(),
                ])
                .args([
                    "--coordinator",
                    &coordinator.to_string(),
                    "--id",
                    &format!("node{i}"),
                ])
                .args(releases.map_or_else(Vec::new, Releases::node_args))
                .args(["--tls", &tls.dir.display().to_string()])
                .stdout(Stdio::null())
                .stderr(node_log(i)?)
                .spawn()
                .map_err(|e| {
                    format!("cannot start {}: {e}", bin.join("kv-supervisor").display())
                })?;
            cluster.addrs.push(addr);
            cluster.supervisors.push((child, state));
        }
        Ok(cluster)
    }

    /// Where the supervisor of node `i` keeps its node's pid (restart mode).
    fn pid_file(&self, i: usize) -> Option<PathBuf> {
        self.supervisors
            .get(i)
            .map(|(_, state)| state.join("node.pid"))
    }

    fn pauses(&self, id: &str) -> Vec<(u32, Duration)> {
        self.in_process
            .iter()
            .find(|(n, _)| n.id() == id)
            .map_or_else(Vec::new, |(n, _)| n.pauses())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, state) in &mut self.supervisors {
            let _ = child.kill();
            let _ = child.wait();
            if let Ok(pid) = std::fs::read_to_string(state.join("node.pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
    }
}
