//! `upshift`: run a coordinator, publish, watch and steer rollouts, and
//! check released versions against the lock file.
//!
//! Every error is one line on stderr and a non-zero exit: 2 for a problem
//! with the command or the coordinator's answer, 3 when a watched rollout
//! halts or is aborted, 1 when `check` finds a locked version changed.

mod dashboard;
mod docs;
mod lock;
mod new;
mod new_version;
mod release;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use upshift::clock::now_ms;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::{self, Control};
use upshift::coordinator::api::{Event3, GateView6, StatusView3};
use upshift::schedule::Registry;
use upshift::udb::{EtcdTls, EtcdUdb, Leadership, RedbUdb};
use upshift::upgrade::{Coordinators, NodeState, RolloutState, Upgrade};

#[derive(Parser)]
#[command(
    name = "upshift",
    version,
    about = "Automatic software upgrades: run a coordinator, publish and watch rollouts, check released versions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Mutual TLS: a directory of certificates (`upshift keys tls`). The
    /// coordinator serves with `coordinator.pem`; the other commands call
    /// it with the certificate `--as` names.
    #[arg(long, global = true)]
    tls: Option<PathBuf>,
    /// Whose certificate in `--tls` to call with: a file name without
    /// `.pem` (`operator-alice`, `reader-bob`); by default the directory's
    /// only `operator-*` certificate.
    #[arg(long = "as", global = true)]
    identity: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a coordinator until interrupted: on its embedded UDB file, or on
    /// etcd, where several coordinators run and one leads.
    Coordinator {
        /// The UDB: a file (created if missing), or
        /// `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`. On etcd this
        /// coordinator stands by until it leads, and exits (code 3) if it
        /// stops leading: run it under a supervisor that restarts it.
        #[arg(long, default_value = "upshift.udb")]
        udb: PathBuf,
        /// Address to listen on; port 0 picks a free one (not on etcd:
        /// nodes and operators are given every coordinator's address).
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: String,
        /// On etcd: the leader's lease, in seconds. A follower takes over
        /// this long after a leader dies (at once after one stops cleanly).
        #[arg(long, default_value_t = 5)]
        lease_secs: u64,
        /// Seconds a node may hold an upgrade slot unheard before it counts
        /// as lost (failed; the rollout halts). Keep it above the slowest upgrade.
        #[arg(long, default_value_t = 300)]
        slot_timeout: u64,
        /// Publish only releases signed by these keys (a `release.keys`
        /// file from `upshift keys generate`); `file:` artifacts are refused.
        #[arg(long)]
        release_keys: Option<PathBuf>,
        /// Serve Prometheus metrics over HTTP at `ADDR/metrics` (nodes by
        /// version and state, calls per version, rollouts, UDB writes).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// POST a JSON notice to this `http://` URL each time a rollout is
        /// published, paused, resumed, halted, aborted or final.
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Serve the live dashboard at `http://ADDR/` (as `upshift
        /// dashboard` does, against this coordinator).
        #[arg(long, value_name = "ADDR")]
        dashboard: Option<String>,
        /// On etcd: speak TLS to it, trusting this CA for etcd's
        /// certificate (etcdctl's `--cacert`).
        #[arg(long, value_name = "FILE")]
        etcd_ca: Option<PathBuf>,
        /// On etcd with `--etcd-ca`: this coordinator's certificate, for an
        /// etcd that checks its clients (`--client-cert-auth`).
        #[arg(long, value_name = "FILE", requires_all = ["etcd_ca", "etcd_key"])]
        etcd_cert: Option<PathBuf>,
        /// The key of `--etcd-cert`.
        #[arg(long, value_name = "FILE", requires = "etcd_cert")]
        etcd_key: Option<PathBuf>,
    },
    /// Scaffold a service crate: a v1 interface and durable state, the
    /// object, a node binary with its agent, a client, a test, a README.
    New {
        /// The crate's name (lowercase letters, digits, `-`, `_`).
        name: String,
        /// The directory to create it in.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// The upshift runtime to depend on by path (default: the
        /// checkout this binary was built from, else crates.io).
        #[arg(long, hide = true)]
        upshift: Option<PathBuf>,
    },
    /// Add the next version to a crate laid out as `upshift new` writes
    /// it: the newest interface and state versions copied as the next, its
    /// object, journaled change, `Follows` and stage, and the empty past and
    /// future SOs the compiler fills in as you change the copy.
    NewVersion {
        /// The crate's directory.
        #[arg(long, default_value = ".")]
        path: PathBuf,
    },
    /// Release keys: `upshift keys generate --dir DIR`.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Signed releases: `upshift release sign …` prints the artifact to publish.
    Release {
        #[command(subcommand)]
        action: ReleaseAction,
    },
    /// Show every node (version, state, last report, calls per version) and upgrade.
    Status {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
    },
    /// Publish an upgrade of a service from one version to the next.
    Publish {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The service to upgrade.
        #[arg(long)]
        service: String,
        /// The version its nodes run.
        #[arg(long)]
        from: u32,
        /// The version to move to (the next one).
        #[arg(long)]
        to: u32,
        /// When nodes may upgrade: comma-separated terms such as
        /// `rolling:1,health:30` (immediately, rolling:N, canary:N:SECS,
        /// groups:a>b, window:HH:MM-HH:MM, health:SECS, custom:NAME).
        #[arg(long, default_value = "rolling:1")]
        schedule: String,
        /// Where the new code is.
        #[arg(long, default_value = "in-process")]
        artifact: String,
        /// Notes for operators.
        #[arg(long, default_value = "")]
        notes: String,
        /// Publish nothing: print the order in which the schedule would let
        /// the registered nodes go, and why they would wait.
        #[arg(long)]
        dry_run: bool,
        /// For a dry run: how long each node's upgrade takes.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        assume_upgrade_secs: u64,
    },
    /// The whole history (the audit trail), oldest first: each event with
    /// the node and upgrade it concerns and who asked for it.
    History {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// Only the events of this upgrade.
        #[arg(long)]
        upgrade: Option<u64>,
        /// Only the events of this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Serve the live dashboard: nodes by service, group and version, each
    /// rollout's progress and history, a version timeline, and pause,
    /// resume and abort buttons (calling the coordinator as this CLI does).
    Dashboard {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// Address to serve the page on; keep it on loopback or a private
        /// network (it steers rollouts with this CLI's identity).
        #[arg(long, default_value = "127.0.0.1:7480")]
        listen: String,
    },
    /// Follow a rollout live until it is final, halted or aborted.
    Watch {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade; the newest one when omitted.
        upgrade: Option<u64>,
    },
    /// Stop granting slots for an upgrade.
    Pause {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade.
        upgrade: u64,
    },
    /// Grant slots again (also after a halt; failed nodes may retry).
    Resume {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade.
        upgrade: u64,
    },
    /// Approve a rollout its approval gate holds (published with
    /// `approval` or `approval:N` in its schedule): the nodes it held go.
    Approve {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade.
        upgrade: u64,
    },
    /// Roll an upgrade that is not final back: it is aborted, and the
    /// nodes that upgraded go back to its previous version, with their
    /// state, on the same schedule (in process; their stages must be
    /// reversible). Prints the rollback's id.
    Rollback {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade.
        upgrade: u64,
    },
    /// Abandon an upgrade.
    Abort {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The upgrade.
        upgrade: u64,
    },
    /// Remove a node that is gone for good (silent for longer than the
    /// coordinator's liveness window), so it no longer holds a rollout open
    /// or its id. Recorded in the history.
    Forget {
        /// The coordinator's address; several, comma-separated, when
        /// coordinators share an etcd UDB (whichever leads answers).
        #[arg(long, short, default_value = "127.0.0.1:7400")]
        coordinator: Coordinators,
        /// The node's id.
        node: String,
    },
    /// Check every released (locked) interface version, type and state
    /// version against the source: runs `cargo check --workspace
    /// --all-targets`; exit 1 when one changed.
    Check {
        /// The Cargo.toml of the package or workspace; the current one when omitted.
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// Also fail when a version or type is not locked yet (for release branches).
        #[arg(long)]
        all_locked: bool,
        /// More arguments for `cargo check`, after `--`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Render the version diff pages of every interface and state in the
    /// workspace (from a `cargo check`): Markdown, or JSON for tools.
    Docs {
        /// Write one file per interface (`<service>.md`) and state
        /// (`state-<name>.md`) here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// With --out: write nothing, fail (exit 1) when a file there is stale.
        #[arg(long, requires = "out")]
        check: bool,
        /// JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// The Cargo.toml of the package or workspace; the current one when omitted.
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// More arguments for `cargo check`, after `--`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Add every version and type not locked yet to its lock file; locked
    /// ones are never rewritten. Run it when you release.
    Lock {
        /// The Cargo.toml of the package or workspace; the current one when omitted.
        #[arg(long)]
        manifest_path: Option<PathBuf>,
        /// More arguments for `cargo check`, after `--`.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
}

/// How many release keys to make, where, and how many must sign.
#[derive(clap::Args)]
struct NewKeys {
    /// Where to write them (created; must not hold a key list yet).
    #[arg(long)]
    dir: PathBuf,
    /// How many keys.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// How many of them must sign a release.
    #[arg(long, default_value_t = 1)]
    threshold: u32,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Write new release signing keys (`release-<id>.key`, secret) and the
    /// list nodes and coordinators trust (`release.keys`).
    Generate(NewKeys),
    /// New release keys whose list is endorsed by a threshold of the
    /// current keys, so every holder of the current list accepts it
    /// (`upshift keys accept`).
    Rotate {
        /// The new keys and their endorsed list.
        #[command(flatten)]
        keys: NewKeys,
        /// The list trusted now (`release.keys`).
        #[arg(long)]
        current: PathBuf,
        /// A current secret key that endorses the new list; repeat up to
        /// the current threshold.
        #[arg(long = "sign", required = true)]
        signers: Vec<PathBuf>,
    },
    /// Replace a trusted key list by the next one, only if a threshold of
    /// its keys endorsed it (run on each node and coordinator host).
    Accept {
        /// The list trusted now; replaced in place.
        #[arg(long)]
        current: PathBuf,
        /// The endorsed next list (`upshift keys rotate`).
        #[arg(long)]
        next: PathBuf,
    },
    /// Development certificates for mutual TLS: a CA (`ca.pem`, `ca.key`,
    /// made once), the coordinator's, and one per node, operator and
    /// reader named. Production certificates come from your own PKI, with
    /// the same identity URIs (`upshift://node/ID`, …).
    Tls {
        /// Where to write them (the CA there is reused).
        dir: PathBuf,
        /// A node id: writes `node-ID.pem` (may repeat).
        #[arg(long)]
        node: Vec<String>,
        /// An operator's name: writes `operator-NAME.pem` (may repeat;
        /// `admin` when none is given).
        #[arg(long)]
        operator: Vec<String>,
        /// A reader's name: writes `reader-NAME.pem` (may repeat).
        #[arg(long)]
        reader: Vec<String>,
        /// A host name or IP address the coordinator and nodes are reached
        /// at (may repeat; `127.0.0.1` and `localhost` when none is given).
        #[arg(long)]
        host: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ReleaseAction {
    /// Sign a binary as a release and print its artifact string for
    /// `upshift publish --artifact`.
    Sign(release::Sign),
}

/// A failure to report: its line and exit code.
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 2)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    upshift::logs::init();
    let cli = Cli::parse();
    let access = tls::Access {
        dir: cli.tls,
        identity: cli.identity,
    };
    match run(cli.command, &access).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(line, code)) => {
            eprintln!("error: {line}");
            ExitCode::from(code)
        }
    }
}

async fn client(addr: Coordinators, access: &tls::Access) -> Result<api::v6::Client, Failure> {
    let config = upshift::ClientConfig {
        tls: access.client()?,
        ..upshift::ClientConfig::default()
    };
    let conn = addr
        .connect(&config)
        .await
        .map_err(|e| Failure(format!("cannot reach the coordinator at {addr}: {e}"), 2))?;
    Ok(api::v6::Client::new(conn).with_deadline(Duration::from_secs(10)))
}

/// Serves the dashboard on `listen` for `coordinators`, calling them with
/// this CLI's identity.
async fn serve_dashboard(
    listen: &str,
    coordinators: Coordinators,
    access: &tls::Access,
) -> Result<dashboard::Dashboard, Failure> {
    let config = upshift::ClientConfig {
        tls: access.client()?,
        ..upshift::ClientConfig::default()
    };
    let served = dashboard::serve(listen, coordinators, config)
        .await
        .map_err(|e| Failure(format!("cannot serve the dashboard on {listen}: {e}"), 2))?;
    println!("dashboard at http://{}/", served.addr);
    Ok(served)
}

/// Opens the etcd UDB at `url` and waits until this coordinator leads it,
/// saying on stderr who leads meanwhile.
async fn lead(
    url: &str,
    tls: Option<EtcdTls>,
    listen: &str,
    lease_secs: u64,
) -> Result<(EtcdUdb, Leadership), Failure> {
    if listen.ends_with(":0") {
        return Err(Failure(
            "with an etcd UDB, --listen needs a fixed port: nodes and operators are given every coordinator's address".into(),
            2,
        ));
    }
    let (url, listen) = (url.to_string(), listen.to_string());
    let campaign = tokio::task::spawn_blocking(move || {
        let store = match tls {
            Some(tls) => EtcdUdb::open_with_tls(&url, tls)?,
            None => EtcdUdb::open(&url)?,
        };
        eprintln!("upshift: campaigning to lead {url} as {listen}");
        let leadership = store.campaign(&listen, Duration::from_secs(lease_secs), |leader| {
            eprintln!("upshift: standing by: the coordinator at {leader} leads");
        })?;
        Ok::<_, upshift::udb::UdbError>((store, leadership))
    });
    let led = campaign
        .await
        .map_err(|e| Failure(format!("the campaign stopped: {e}"), 1))??;
    Ok(led)
}

async fn run(command: Command, access: &tls::Access) -> Result<(), Failure> {
    match command {
        Command::Check {
            manifest_path,
            all_locked,
            cargo_args,
        } => lock::run(lock::Run {
            mode: lock::Mode::Check,
            cargo: lock::Cargo {
                manifest_path,
                args: cargo_args,
            },
            all_locked,
        }),
        Command::Lock {
            manifest_path,
            cargo_args,
        } => lock::run(lock::Run {
            mode: lock::Mode::Add,
            cargo: lock::Cargo {
                manifest_path,
                args: cargo_args,
            },
            all_locked: false,
        }),
        Command::Docs {
            out,
            check,
            json,
            manifest_path,
            cargo_args,
        } => docs::run(docs::Run {
            out,
            check,
            json,
            cargo: lock::Cargo {
                manifest_path,
                args: cargo_args,
            },
        }),
        Command::Coordinator {
            udb,
            listen,
            lease_secs,
            slot_timeout,
            release_keys,
            metrics,
            webhook,
            dashboard,
            etcd_ca,
            etcd_cert,
            etcd_key,
        } => {
            let etcd_url = udb.to_str().filter(|u| u.starts_with("etcd://"));
            let etcd_tls = match (etcd_ca, etcd_url) {
                (Some(_), None) => {
                    return Err(Failure(
                        "--etcd-ca is for a UDB on etcd (--udb etcd://…)".into(),
                        2,
                    ));
                }
                (Some(ca), Some(_)) => {
                    let client = etcd_cert.as_deref().zip(etcd_key.as_deref());
                    Some(EtcdTls::from_files(&ca, client)?)
                }
                (None, _) => None,
            };
            let (coordinator, mut leadership) = match etcd_url {
                Some(url) => {
                    let (store, leadership) = lead(url, etcd_tls, &listen, lease_secs).await?;
                    (
                        Coordinator::open(store, Registry::default())?,
                        Some(leadership),
                    )
                }
                None => (
                    Coordinator::open(RedbUdb::open(&udb)?, Registry::default())?,
                    None,
                ),
            };
            let mut coordinator = coordinator.with_slot_timeout(Duration::from_secs(slot_timeout));
            match release_keys {
                Some(path) => {
                    let keys = upshift::upgrade::release::ReleaseKeys::read(&path)?;
                    println!(
                        "publishing only releases signed by {} of {} keys ({})",
                        keys.threshold(),
                        keys.ids().count(),
                        path.display()
                    );
                    coordinator = coordinator.with_release_keys(keys);
                }
                None => eprintln!(
                    "WARNING: no --release-keys: this coordinator publishes unsigned `file:` artifacts, which nodes without release keys run"
                ),
            }
            if let Some(url) = webhook {
                let hook = upshift::coordinator::Webhook::parse(&url).map_err(|e| Failure(e, 2))?;
                println!("notices to {url}");
                coordinator = coordinator.with_webhook(hook);
            }
            let _metrics = match metrics {
                Some(addr) => {
                    let server = coordinator
                        .metrics()
                        .serve(addr.as_str())
                        .await
                        .map_err(|e| Failure(format!("cannot serve metrics on {addr}: {e}"), 2))?;
                    println!("metrics at http://{}/metrics", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            let served = match access.server()? {
                Some(tls) => coordinator.serve_tls(listen.as_str(), tls).await,
                None => {
                    eprintln!(
                        "WARNING: no --tls: this coordinator serves plain TCP, and anyone who can reach it can publish upgrades and steer rollouts"
                    );
                    coordinator.serve(listen.as_str()).await
                }
            };
            let (_server, listener) =
                served.map_err(|e| Failure(format!("cannot listen on {listen}: {e}"), 2))?;
            println!(
                "coordinator listening on {} (UDB {})",
                listener.local_addr(),
                udb.display()
            );
            let _dashboard = match dashboard {
                Some(addr) => {
                    let served =
                        serve_dashboard(&addr, listener.local_addr().into(), access).await?;
                    Some(served)
                }
                None => None,
            };
            match &mut leadership {
                None => tokio::signal::ctrl_c().await?,
                Some(leadership) => tokio::select! {
                    interrupted = tokio::signal::ctrl_c() => interrupted?,
                    why = leadership.lost() => {
                        // Stop at once: winding the runtime down waits for
                        // its blocking tasks (the UDB writer among them),
                        // and a deposed leader must not linger serving.
                        eprintln!("upshift: this coordinator no longer leads: {why}; it stops (restarted, it stands by)");
                        std::process::exit(3);
                    }
                },
            }
            Ok(())
        }
        Command::New {
            name,
            path,
            upshift,
        } => new::run(&name, &path, upshift.as_deref()),
        Command::NewVersion { path } => new_version::run(&path),
        Command::Keys {
            action: KeysAction::Generate(keys),
        } => release::generate(&keys.dir, keys.count, keys.threshold),
        Command::Keys {
            action:
                KeysAction::Rotate {
                    keys,
                    current,
                    signers,
                },
        } => release::rotate(&keys.dir, keys.count, keys.threshold, &current, &signers),
        Command::Keys {
            action: KeysAction::Accept { current, next },
        } => release::accept(&current, &next),
        Command::Keys {
            action:
                KeysAction::Tls {
                    dir,
                    node,
                    operator,
                    reader,
                    host,
                },
        } => tls::generate(&dir, &node, &operator, &reader, &host),
        Command::Release {
            action: ReleaseAction::Sign(args),
        } => release::sign(args),
        Command::Status { coordinator } => {
            let client = client(coordinator, access).await?;
            let status = client.status().await?;
            let gates = client.gates().await?;
            print!("{}", render_status(&status, &gates));
            Ok(())
        }
        Command::Publish {
            coordinator,
            service,
            from,
            to,
            schedule,
            artifact,
            notes,
            dry_run,
            assume_upgrade_secs,
        } => {
            let terms = schedule;
            let (schedule, gates) = upshift::upgrade::schedule_and_gates(&terms)
                .map_err(|e: String| Failure(format!("--schedule: {e}"), 2))?;
            let def = Upgrade {
                service,
                from,
                to,
                schedule,
                artifact,
                notes,
            };
            if dry_run {
                let status = client(coordinator, access).await?.status().await?;
                print!("{}", dry_run_of(def, &terms, status, assume_upgrade_secs)?);
                if !gates.is_empty() {
                    let list: Vec<String> = gates.iter().map(ToString::to_string).collect();
                    println!(
                        "and its gates, which the waves above do not follow: {}",
                        list.join(", ")
                    );
                }
                return Ok(());
            }
            let id = client(coordinator, access)
                .await?
                .publish_gated(def, gates)
                .await?
                .map_err(|e| Failure(e.to_string(), 2))?;
            println!("published upgrade #{id}");
            Ok(())
        }
        Command::Dashboard {
            coordinator,
            listen,
        } => {
            serve_dashboard(&listen, coordinator, access).await?;
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Watch {
            coordinator,
            upgrade,
        } => watch(client(coordinator, access).await?, upgrade).await,
        Command::History {
            coordinator,
            upgrade,
            node,
        } => {
            let client = client(coordinator, access).await?;
            let now = now_ms();
            let mut after = 0;
            loop {
                let page = client.history(after, api::MAX_HISTORY_PAGE).await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.seq;
                for e in page.iter().filter(|e| {
                    upgrade.is_none_or(|u| e.upgrade == Some(u))
                        && node.as_ref().is_none_or(|n| e.node.as_ref() == Some(n))
                }) {
                    println!("{}", render_event(e, now));
                }
            }
            Ok(())
        }
        Command::Pause {
            coordinator,
            upgrade,
        } => control(coordinator, upgrade, Control::Pause, access).await,
        Command::Resume {
            coordinator,
            upgrade,
        } => control(coordinator, upgrade, Control::Resume, access).await,
        Command::Abort {
            coordinator,
            upgrade,
        } => control(coordinator, upgrade, Control::Abort, access).await,
        Command::Approve {
            coordinator,
            upgrade,
        } => {
            client(coordinator, access)
                .await?
                .approve(upgrade)
                .await?
                .map_err(|e| Failure(e.to_string(), 2))?;
            println!("upgrade #{upgrade} approved");
            Ok(())
        }
        Command::Rollback {
            coordinator,
            upgrade,
        } => {
            let back = client(coordinator, access)
                .await?
                .rollback(upgrade)
                .await?
                .map_err(|e| Failure(e.to_string(), 2))?;
            println!("upgrade #{upgrade} rolled back: its nodes go back in upgrade #{back}");
            Ok(())
        }
        Command::Forget { coordinator, node } => {
            client(coordinator, access)
                .await?
                .forget(node.clone())
                .await?
                .map_err(|e| Failure(e.to_string(), 2))?;
            println!("node {node} forgotten");
            Ok(())
        }
    }
}

async fn control(
    addr: Coordinators,
    upgrade: u64,
    action: Control,
    access: &tls::Access,
) -> Result<(), Failure> {
    client(addr, access)
        .await?
        .control(upgrade, action)
        .await?
        .map_err(|e| Failure(e.to_string(), 2))?;
    println!("upgrade #{upgrade}: {action:?} done");
    Ok(())
}

/// `upshift publish --dry-run`: the waves the schedule would make of the
/// registered nodes, from a plan of the rollout (nothing is published).
fn dry_run_of(
    def: Upgrade,
    terms: &str,
    status: StatusView3,
    upgrade_secs: u64,
) -> Result<String, Failure> {
    if let Err(e) = Registry::default().validate(&def.schedule) {
        return Err(Failure(
            format!(
                "a dry run here cannot follow this schedule: {e} (custom schedules are \
                 registered in the coordinator, not in this command)"
            ),
            2,
        ));
    }
    let nodes: Vec<upshift::upgrade::NodeRecord> =
        status.nodes.into_values().map(Into::into).collect();
    let count = nodes
        .iter()
        .filter(|n| n.info.service == def.service)
        .count();
    if count == 0 {
        return Err(Failure(
            format!("no node of service {:?} is registered", def.service),
            2,
        ));
    }
    let record = upshift::upgrade::UpgradeRecord {
        id: 0,
        def,
        state: RolloutState::Active,
        published_ms: now_ms(),
    };
    let plan = upshift::schedule::plan(
        &Registry::default(),
        &record,
        &nodes,
        now_ms(),
        upgrade_secs * 1000,
    );
    let def = &record.def;
    let mut out = format!(
        "dry run: {} v{} -> v{} with `{terms}` over {count} nodes, each upgrade taking {upgrade_secs} s, every node healthy:\n",
        def.service, def.from, def.to
    );
    for (i, wave) in plan.waves.iter().enumerate() {
        out.push_str(&format!(
            "  wave {:<3} +{:<7} {}\n",
            i + 1,
            format!("{}s", wave.at_ms / 1000),
            wave.nodes.join(", ")
        ));
        if let Some(why) = &wave.after {
            out.push_str(&format!("{:17}(until then: {why})\n", ""));
        }
    }
    match plan.end {
        Ok(ms) => out.push_str(&format!(
            "every node would run v{} and the rollout be final after {} s; nothing was published \
             (within a wave, nodes go in the order they ask)\n",
            def.to,
            ms / 1000
        )),
        Err(why) => out.push_str(&format!(
            "the rollout would not finish: {why}; nothing was published\n"
        )),
    }
    Ok(out)
}

/// How many of the newest events `upshift status` prints.
const STATUS_EVENTS: usize = 10;

fn render_status(status: &StatusView3, gates: &BTreeMap<u64, GateView6>) -> String {
    let mut out = String::new();
    if let Some(why) = &status.udb_failing {
        out.push_str(&format!(
            "COORDINATOR UNHEALTHY: its UDB refuses writes, so it records nothing: {why}\n"
        ));
    }
    let now = now_ms();
    if status.nodes.is_empty() {
        out.push_str("no nodes registered\n");
    } else {
        out.push_str(&format!(
            "{:<14} {:<10} {:<8} {:>7} {:<22} {:>9}  calls per version\n",
            "NODE", "SERVICE", "GROUP", "VERSION", "STATE", "LAST SEEN"
        ));
    }
    for n in status.nodes.values() {
        let state = match &n.state {
            NodeState::Running if n.healthy => "running".to_string(),
            NodeState::Running => "running (unhealthy)".to_string(),
            NodeState::Upgrading { to } => format!("upgrading to v{to}"),
            NodeState::Failed { to, .. } => format!("failed v{to}"),
        };
        let calls: Vec<String> = n.calls.iter().map(|(v, c)| format!("v{v}:{c}")).collect();
        out.push_str(&format!(
            "{:<14} {:<10} {:<8} {:>7} {:<22} {:>8.1}s  {}\n",
            n.info.id,
            n.info.service,
            n.info.group,
            format!("v{}", n.info.version),
            state,
            now.saturating_sub(n.last_seen_ms) as f64 / 1000.0,
            calls.join(" ")
        ));
        if let NodeState::Failed { reason, .. } = &n.state {
            out.push_str(&format!("{:<14} why: {reason}\n", ""));
        }
        if let Some(problem) = n.problem.as_ref().filter(|_| !n.healthy) {
            out.push_str(&format!("{:<14} unhealthy: {problem}\n", ""));
        }
    }
    for u in status.rollouts.values() {
        out.push_str(&format!(
            "upgrade #{} {} v{} -> v{}: {}\n",
            u.id,
            u.upgrade.service,
            u.upgrade.from,
            u.upgrade.to,
            describe(&u.state)
        ));
        if let Some(g) = gates.get(&u.id) {
            let list: Vec<String> = g.gates.iter().map(ToString::to_string).collect();
            let approved = match (&g.approved_ms, &g.approved_by) {
                (Some(_), Some(by)) => format!(" (approved by {by})"),
                (Some(_), None) => " (approved)".to_string(),
                _ => String::new(),
            };
            out.push_str(&format!("  gates: {}{approved}\n", list.join(", ")));
            if !g.cohorts.is_empty() {
                let cohorts: Vec<String> = g.cohorts.iter().map(ToString::to_string).collect();
                out.push_str(&format!("  judged on {}\n", cohorts.join("; ")));
            }
            if let Some(waiting) = &g.waiting {
                out.push_str(&format!("  {waiting}\n"));
            }
        }
    }
    let skip = status.recent.len().saturating_sub(STATUS_EVENTS);
    if !status.recent.is_empty() {
        out.push_str(&format!(
            "latest events ({} of {}):\n",
            status.recent.len() - skip,
            status.events
        ));
    }
    for e in &status.recent[skip..] {
        out.push_str(&format!("  {}\n", render_event(e, now)));
    }
    out
}

/// `#12  3.2s ago  n1 (upgrade #2)  slot granted for v2  by node n1`.
fn render_event(e: &Event3, now: u64) -> String {
    let mut line = format!(
        "#{:<5} {:>7.1}s ago  ",
        e.seq,
        now.saturating_sub(e.at_ms) as f64 / 1000.0
    );
    match (&e.node, e.upgrade) {
        (Some(node), Some(up)) => line.push_str(&format!("{node} (upgrade #{up})  ")),
        (Some(node), None) => line.push_str(&format!("{node}  ")),
        (None, Some(up)) => line.push_str(&format!("upgrade #{up}  ")),
        (None, None) => {}
    }
    line.push_str(&e.what);
    if let Some(by) = &e.by {
        line.push_str(&format!("  [by {by}]"));
    }
    line
}

fn describe(state: &RolloutState) -> String {
    match state {
        RolloutState::Halted { reason } => format!("HALTED: {reason}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(width - filled)
    )
}

async fn watch(client: api::v6::Client, upgrade: Option<u64>) -> Result<(), Failure> {
    let status = client.status().await?;
    let id = match upgrade.or_else(|| status.rollouts.keys().last().copied()) {
        Some(id) if status.rollouts.contains_key(&id) => id,
        Some(id) => return Err(Failure(format!("no upgrade #{id}"), 2)),
        None => return Err(Failure("no upgrade has been published".into(), 2)),
    };
    let mut last_line = String::new();
    loop {
        let status = client.status().await?;
        let up = &status.rollouts[&id];
        let nodes: Vec<_> = status
            .nodes
            .values()
            .filter(|n| n.info.service == up.upgrade.service)
            .collect();
        let done = nodes
            .iter()
            .filter(|n| n.info.version >= up.upgrade.to)
            .count();
        let upgrading = nodes
            .iter()
            .filter(|n| matches!(n.state, NodeState::Upgrading { .. }))
            .count();
        let calls: u64 = nodes.iter().flat_map(|n| n.calls.values()).sum();
        let line = format!(
            "upgrade #{id} v{} -> v{} {} upgrading {upgrading}  calls {calls}  {}",
            up.upgrade.from,
            up.upgrade.to,
            bar(done, nodes.len()),
            describe(&up.state)
        );
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        match &up.state {
            RolloutState::Final => return Ok(()),
            RolloutState::Halted { reason } => {
                return Err(Failure(format!("upgrade #{id} halted: {reason}"), 3));
            }
            RolloutState::Aborted => return Err(Failure(format!("upgrade #{id} was aborted"), 3)),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
