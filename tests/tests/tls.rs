//! Mutual TLS on the coordinator and on node RPC, with real certificates
//! from a development CA, over loopback: who may call what comes from the
//! caller's certificate, and every refused call is refused with a reason
//! and changes nothing.

use std::path::Path;
use std::time::Duration;

use upshift::coordinator::Coordinator;
use upshift::coordinator::api::{self, UpgradeDef};
use upshift::node::{Node, NodeConfig};
use upshift::rpc::tls::dev::DevCa;
use upshift::rpc::{ClientTls, Identity, Role, ServerTls, TlsFiles};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::state::FileStore;
use upshift::udb::RedbUdb;
use upshift::upgrade::{NodeInfo, RolloutState};
use upshift::{CallError, ClientConfig, Connection, RetryPolicy, ServerConfig};
use upshift_examples::kv::interface::{v1, v2};
use upshift_tests::cluster::{temp_dir, wait_for};

const LOCAL: [&str; 2] = ["127.0.0.1", "localhost"];

/// A CA in `dir` and certificates for a coordinator, nodes n1 and n2, an
/// operator and a reader.
fn certificates(dir: &Path) {
    let ca = DevCa::open_or_create(dir).expect("a CA");
    let hosts: Vec<String> = LOCAL.iter().map(|h| h.to_string()).collect();
    for (file, role, name) in [
        ("coordinator", Role::Coordinator, "c1"),
        ("node-n1", Role::Node, "n1"),
        ("node-n2", Role::Node, "n2"),
        ("operator", Role::Operator, "alice"),
        ("reader", Role::Reader, "bob"),
    ] {
        ca.issue(dir, file, &Identity::new(role, name), &hosts)
            .expect("a certificate");
    }
}

fn client_tls(dir: &Path, name: &str) -> ClientTls {
    ClientTls::from_files(&TlsFiles::in_dir(dir, name)).expect("client TLS")
}

async fn coordinator(dir: &Path) -> (upshift::Server, upshift::Listener) {
    let udb = RedbUdb::open(dir.join("udb.redb")).expect("udb");
    let tls = ServerTls::from_files(&TlsFiles::in_dir(dir, "coordinator")).expect("server TLS");
    Coordinator::open(udb, Registry::default())
        .expect("open")
        .serve_tls("127.0.0.1:0", tls)
        .await
        .expect("serve")
}

fn client_config(dir: &Path, name: &str) -> ClientConfig {
    ClientConfig {
        tls: Some(client_tls(dir, name)),
        ..ClientConfig::default()
    }
}

/// A v2 client (the previous release's CLI and agents), served through
/// v2's past SO.
async fn client_as(addr: std::net::SocketAddr, tls: ClientTls) -> api::v2::Client {
    let config = ClientConfig {
        tls: Some(tls),
        ..ClientConfig::default()
    };
    let conn = Connection::connect_with(addr, config)
        .await
        .expect("connect");
    api::v2::Client::new(conn).with_deadline(Duration::from_secs(10))
}

fn upgrade() -> UpgradeDef {
    upshift_tests::kv_upgrade(1, ScheduleSpec::Rolling { max_parallel: 1 })
}

fn node_info(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        address: "127.0.0.1:1".into(),
        group: String::new(),
        service: "Kv".into(),
        version: 1,
    }
}

fn forbidden(result: Result<impl std::fmt::Debug, CallError>) -> String {
    match result {
        Err(CallError::Forbidden(why)) => why,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_steer_readers_only_read() {
    let dir = temp_dir("tls-roles");
    certificates(&dir);
    let (_server, listener) = coordinator(&dir).await;
    let operator = client_as(listener.local_addr(), client_tls(&dir, "operator")).await;
    let reader = client_as(listener.local_addr(), client_tls(&dir, "reader")).await;

    let why = forbidden(reader.publish(upgrade().into()).await);
    assert!(
        why.contains("reader bob may not publish an upgrade"),
        "{why}"
    );
    assert!(why.contains("needs an operator's certificate"), "{why}");
    assert!(
        reader
            .status()
            .await
            .expect("a reader reads")
            .rollouts
            .is_empty()
    );

    let n1 = client_as(listener.local_addr(), client_tls(&dir, "node-n1")).await;
    n1.register(node_info("n1"))
        .await
        .expect("rpc")
        .expect("register");
    let id = operator
        .publish(upgrade().into())
        .await
        .expect("rpc")
        .expect("an operator publishes");
    let why = forbidden(reader.control(id, api::Control::Abort).await);
    assert!(why.contains("may not pause, resume or abort"), "{why}");
    let why = forbidden(reader.register(node_info("n1")).await);
    assert!(why.contains("only a node does"), "{why}");
    let status = operator.status().await.expect("status");
    assert_eq!(status.rollouts[&id].state, RolloutState::Active);
    // The history says who made each change; refused calls made none.
    let said = |needle: &str| status.recent.iter().any(|e| e.what.contains(needle));
    assert!(
        said("(on a call by operator alice)"),
        "{:#?}",
        status.recent
    );
    assert!(said("(on a call by node n1)"), "{:#?}", status.recent);
    // Bob's three refused calls: recorded once (at most once a minute).
    let refusals: Vec<_> = status
        .recent
        .iter()
        .filter(|e| e.what.contains("bob"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        refusals[0]
            .what
            .starts_with("refused a call: reader bob may not publish an upgrade")
            && refusals[0].what.ends_with("(on a call by reader bob)"),
        "{refusals:#?}"
    );
    // v3 callers read who in a field of its own (v2's words above are
    // assembled from it by v2's past SO).
    let conn = Connection::connect_with(listener.local_addr(), client_config(&dir, "operator"))
        .await
        .expect("connects");
    let operator3 = api::v3::Client::new(conn).with_deadline(Duration::from_secs(10));
    let view = operator3.status().await.expect("status");
    let published = view
        .recent
        .iter()
        .find(|e| e.what.starts_with("published "))
        .expect("the publish is in the history");
    assert_eq!(published.by.as_deref(), Some("operator alice"));
    assert!(!published.what.contains("on a call by"), "{published:?}");
    // Forgetting a node steers the cluster: an operator's to do.
    let reader3 = api::v3::Client::new(
        Connection::connect_with(listener.local_addr(), client_config(&dir, "reader"))
            .await
            .expect("connects"),
    );
    let why = forbidden(reader3.forget("n1".into()).await);
    assert!(why.contains("reader bob may not forget a node"), "{why}");
    let refused = operator3
        .forget("n1".into())
        .await
        .expect("rpc")
        .expect_err("n1 was just heard from");
    assert!(refused.to_string().contains("stop it first"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_acts_only_as_the_node_in_its_certificate() {
    let dir = temp_dir("tls-impersonation");
    certificates(&dir);
    let (_server, listener) = coordinator(&dir).await;
    let n2 = client_as(listener.local_addr(), client_tls(&dir, "node-n2")).await;
    let operator = client_as(listener.local_addr(), client_tls(&dir, "operator")).await;

    let why = forbidden(n2.register(node_info("n1")).await);
    assert!(why.contains("node n2 may not register as node n1"), "{why}");
    n2.register(node_info("n2"))
        .await
        .expect("rpc")
        .expect("n2 registers as itself");
    let id = operator
        .publish(upgrade().into())
        .await
        .expect("rpc")
        .expect("publish");
    let why = forbidden(n2.request_slot("n1".into(), id).await);
    assert!(why.contains("as node n1"), "{why}");
    let why = forbidden(n2.publish(upgrade().into()).await);
    assert!(why.contains("node n2 may not publish"), "{why}");
    let why = forbidden(n2.status().await);
    assert!(why.contains("may not read"), "{why}");

    let status = operator.status().await.expect("status");
    assert!(
        !status.nodes.contains_key("n1"),
        "nothing was recorded for n1"
    );
    assert!(status.nodes.contains_key("n2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_certificate_of_the_ca_change_nothing() {
    let dir = temp_dir("tls-strangers");
    certificates(&dir);
    let stranger = temp_dir("tls-strangers-ca");
    certificates(&stranger);
    let (_server, listener) = coordinator(&dir).await;
    let addr = listener.local_addr();

    // Plain TCP to a TLS coordinator: no call is served.
    let plain = Connection::connect(addr).await.expect("TCP connects");
    let plain = api::v2::Client::new(plain).with_deadline(Duration::from_secs(5));
    assert!(plain.publish(upgrade().into()).await.is_err());

    // An operator's certificate from another CA: the handshake fails.
    let config = ClientConfig {
        tls: Some(client_tls(&stranger, "operator")),
        deadline: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    match Connection::connect_with(addr, config).await {
        Err(_) => {}
        Ok(conn) => {
            let client = api::v2::Client::new(conn).with_deadline(Duration::from_secs(5));
            assert!(client.publish(upgrade().into()).await.is_err());
        }
    }

    // A server certificate from another CA: the client refuses the server.
    let config = ClientConfig {
        tls: Some(
            ClientTls::from_files(&TlsFiles {
                ca: stranger.join("ca.pem"),
                ..TlsFiles::in_dir(&dir, "operator")
            })
            .expect("client TLS"),
        ),
        deadline: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    assert!(Connection::connect_with(addr, config).await.is_err());

    let operator = client_as(addr, client_tls(&dir, "operator")).await;
    assert!(operator.status().await.expect("status").rollouts.is_empty());
}

/// A node whose agent and RPC both use TLS is upgraded by a rollout, and
/// its clients call it over TLS; a client without a certificate cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_runs_end_to_end_over_tls() {
    let dir = temp_dir("tls-rollout");
    certificates(&dir);
    let (_server, listener) = coordinator(&dir).await;
    let operator = client_as(listener.local_addr(), client_tls(&dir, "operator")).await;

    let mut config = NodeConfig::new("n1");
    config.heartbeat = Duration::from_millis(20);
    config.coordinator_tls = Some(client_tls(&dir, "node-n1"));
    config.server = ServerConfig {
        tls: Some(ServerTls::from_files(&TlsFiles::in_dir(&dir, "node-n1")).expect("node TLS")),
        ..ServerConfig::default()
    };
    let store = FileStore::open(dir.join("n1"), upshift_examples::kv::state::NAME).expect("store");
    let node = Node::start(config, store, upshift_examples::kv::stages(), 1).expect("start");
    let node_listener = node.listen("127.0.0.1:0").await.expect("listen");
    let _agent = node.run_agent(
        listener.local_addr(),
        node_listener.local_addr().to_string(),
    );

    let caller = ClientConfig {
        tls: Some(client_tls(&dir, "reader")),
        ..ClientConfig::default()
    };
    let conn = Connection::connect_with(node_listener.local_addr(), caller)
        .await
        .expect("connect");
    let c1 = v1::Client::new(conn.clone()).with_retry(RetryPolicy::default());
    c1.put("k".into(), "v".into())
        .await
        .expect("a put over TLS");

    wait_for(Duration::from_secs(10), "n1 to register", || async {
        operator
            .status()
            .await
            .expect("status")
            .nodes
            .contains_key("n1")
    })
    .await;
    let id = operator
        .publish(upgrade().into())
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(
        Duration::from_secs(30),
        "the rollout to be final",
        || async {
            operator.status().await.expect("status").rollouts[&id].state == RolloutState::Final
        },
    )
    .await;
    assert_eq!(node.version(), 2);
    let c2 = v2::Client::new(conn);
    assert_eq!(c2.get("k".into()).await.expect("get"), Some("v".into()));

    let plain = Connection::connect(node_listener.local_addr())
        .await
        .expect("TCP");
    let plain = v1::Client::new(plain).with_deadline(Duration::from_secs(5));
    assert!(plain.get("k".into()).await.is_err());
}
