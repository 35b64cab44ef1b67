//! The etcd UDB against a real etcd: what it stores reads back as the
//! in-memory UDB holds it (across pages and split transactions), only the
//! leader writes, a deposed leader's writes are refused, what it cannot
//! read it says so, and over TLS only a client with a certificate of etcd's
//! CA gets in.

use std::io::{Read, Write};
use std::time::Duration;

use upshift::rpc::tls::dev::DevCa;
use upshift::udb::{Batch, EtcdTls, EtcdUdb, MemoryUdb, Udb};
use upshift::upgrade::{
    Event, NodeInfo, NodeRecord, NodeState, RolloutState, ScheduleSpec, Upgrade, UpgradeRecord,
};
use upshift_tests::base64::encode;
use upshift_tests::etcd::EtcdServer;

const LEASE: Duration = Duration::from_secs(2);

fn node(id: &str, version: u32) -> NodeRecord {
    NodeRecord {
        info: NodeInfo {
            id: id.into(),
            address: format!("127.0.0.1:{version}"),
            group: "kv".into(),
            service: "Kv".into(),
            version,
        },
        state: NodeState::Running,
        last_seen_ms: 7,
        healthy: true,
        healthy_since_ms: Some(3),
        upgraded_at_ms: None,
        calls: [(1, 5)].into_iter().collect(),
        problem: None,
    }
}

fn upgrade(id: u64) -> UpgradeRecord {
    UpgradeRecord {
        id,
        def: Upgrade {
            service: "Kv".into(),
            from: 1,
            to: 2,
            schedule: ScheduleSpec::Rolling { max_parallel: 2 },
            artifact: "in-process".into(),
            notes: "n".into(),
        },
        state: RolloutState::Active,
        published_ms: 11,
    }
}

fn event(seq: u64) -> Event {
    Event {
        seq,
        at_ms: seq * 10,
        node: Some(format!("n{}", seq % 7)),
        upgrade: Some(1),
        what: format!("event {seq}"),
        by: seq.is_multiple_of(3).then(|| "operator alice".to_string()),
    }
}

/// POSTs to etcd's gateway directly, as another etcd client would.
fn raw(etcd: &EtcdServer, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(etcd.endpoint()).expect("connect to etcd");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: etcd\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

fn put(etcd: &EtcdServer, key: &str, value: &str) {
    let body = format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        encode(key.as_bytes()),
        encode(value.as_bytes())
    );
    raw(etcd, "/v3/kv/put", &body);
}

#[test]
fn what_is_written_reads_back_as_the_memory_udb_holds_it() {
    let etcd = EtcdServer::shared();
    let url = etcd.url("/udb-contract/");
    // A small transaction limit: groups are split, each batch whole.
    let udb = EtcdUdb::open(&url).expect("open").with_max_txn_ops(7);
    let _leading = udb.campaign("a", LEASE, |_| {}).expect("lead");
    let memory = MemoryUdb::new();
    let mut seq = 0;
    let mut groups = Vec::new();
    for round in 0..25u64 {
        let mut group = Vec::new();
        for b in 0..4u64 {
            let mut batch = Batch::default();
            let id = round * 4 + b;
            batch
                .nodes
                .push(node(&format!("n{}", id % 30), (id % 3) as u32 + 1));
            if b == 0 {
                batch.upgrades.push(upgrade(round % 5 + 1));
            }
            // 2,500 events in all: more than one page of a range.
            for _ in 0..25 {
                seq += 1;
                batch.events.push(event(seq));
            }
            if id % 11 == 10 {
                batch.forget.push(format!("n{}", id % 30));
            }
            group.push(batch);
        }
        groups.push(group);
    }
    for group in &groups {
        udb.write(group).expect("write");
        memory.write(group).expect("write to memory");
    }
    let read = EtcdUdb::open(&url)
        .expect("open again")
        .read_all()
        .expect("read");
    let want = memory.content();
    assert_eq!(read.events.len(), 2_500);
    assert_eq!(read, want);
}

#[test]
fn only_the_leader_writes_and_a_deposed_one_is_refused() {
    let etcd = EtcdServer::shared();
    let url = etcd.url("/udb-fence/");
    let a = EtcdUdb::open(&url).expect("open a");
    let write_one = |udb: &EtcdUdb, id: &str| {
        let mut batch = Batch::default();
        batch.nodes.push(node(id, 1));
        udb.write(&[batch])
    };
    let refused = write_one(&a, "before").expect_err("a does not lead yet");
    assert!(refused.to_string().contains("does not lead"), "{refused}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut leading_a = a.campaign("a:1", LEASE, |_| {}).expect("a leads");
    write_one(&a, "n1").expect("the leader writes");
    assert_eq!(a.leader().expect("leader").as_deref(), Some("a:1"));

    // A follower stands by while a leads.
    let b = EtcdUdb::open(&url).expect("open b");
    let (said, heard) = std::sync::mpsc::channel();
    let campaign = std::thread::spawn(move || {
        let leading = b
            .campaign("b:2", LEASE, |leader| {
                let _ = said.send(leader.to_string());
            })
            .expect("b leads");
        (b, leading)
    });
    assert_eq!(
        heard
            .recv_timeout(Duration::from_secs(10))
            .expect("b stands by"),
        "a:1"
    );

    // a stalls past its lease without knowing: its key goes (as etcd
    // deletes it when the lease runs out), and b takes the lead.
    let key = encode(b"/udb-fence/leader");
    raw(etcd, "/v3/kv/deleterange", &format!(r#"{{"key":"{key}"}}"#));
    let (b, _leading_b) = campaign.join().expect("campaign");
    let deposed = write_one(&a, "n2").expect_err("a's write is fenced");
    assert!(deposed.to_string().contains("no longer leads"), "{deposed}");
    let why = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), leading_a.lost())
            .await
            .expect("a learns it lost")
    });
    assert!(why.contains("stepping down"), "{why}");

    write_one(&b, "n3").expect("the new leader writes");
    let content = b.read_all().expect("read");
    let ids: Vec<&str> = content.nodes.keys().map(String::as_str).collect();
    assert_eq!(ids, ["n1", "n3"], "a's refused write is not in the UDB");
}

#[test]
fn a_newer_format_and_foreign_keys_are_refused_with_a_reason() {
    let etcd = EtcdServer::shared();
    put(
        etcd,
        "/udb-newer/meta/format",
        &(EtcdUdb::FORMAT + 1).to_string(),
    );
    let e = EtcdUdb::open(&etcd.url("/udb-newer/")).expect_err("a newer format");
    assert!(e.to_string().contains("newer upshift"), "{e}");

    let url = etcd.url("/udb-foreign/");
    let udb = EtcdUdb::open(&url).expect("open");
    put(etcd, "/udb-foreign/something-else", "x");
    let e = udb.read_all().expect_err("a key the UDB does not write");
    assert!(e.to_string().contains("not a UDB key"), "{e}");

    let e = EtcdUdb::open("etcd://127.0.0.1:1/x/").expect_err("nothing listens on port 1");
    assert!(e.to_string().contains("etcd unreachable"), "{e}");
    let e = EtcdUdb::open("etcd://127.0.0.1/x/").expect_err("no port");
    assert!(e.to_string().contains("HOST:PORT"), "{e}");
}

#[test]
fn over_tls_only_a_client_with_a_certificate_of_etcds_ca_gets_in() {
    let dir = upshift_tests::cluster::temp_dir("etcd-tls");
    let certs = dir.join("certs");
    let etcd = EtcdServer::start_tls("tls", &certs);
    let url = etcd.url("/tls/");

    let udb = etcd.open("/tls/").expect("open over TLS");
    let _leading = udb.campaign("a", LEASE, |_| {}).expect("lead over TLS");
    let mut batch = Batch::default();
    batch.nodes.push(node("n1", 1));
    batch.events.push(event(1));
    udb.write(std::slice::from_ref(&batch))
        .expect("write over TLS");
    // The lease is kept alive over TLS too: still leading after two leases.
    std::thread::sleep(LEASE * 2);
    batch.nodes[0] = node("n1", 2);
    batch.events[0] = event(2);
    udb.write(&[batch]).expect("write after two leases");
    let read = etcd.open("/tls/").expect("open").read_all().expect("read");
    assert_eq!(read.nodes["n1"].info.version, 2);
    assert_eq!(read.events.len(), 2);

    // Plain HTTP to it: refused, saying what to give.
    let plain = EtcdUdb::open(&url).expect_err("plain HTTP to a TLS etcd");
    assert!(plain.to_string().contains("--etcd-ca"), "{plain}");

    // A CA that did not sign etcd's certificate: refused before anything is sent.
    DevCa::open_or_create(&dir.join("other")).expect("another CA");
    let stranger = EtcdTls::from_files(&dir.join("other/ca.pem"), None).expect("settings");
    let refused = EtcdUdb::open_with_tls(&url, stranger).expect_err("an unknown CA");
    assert!(
        refused.to_string().contains("invalid peer certificate"),
        "{refused}"
    );

    // etcd's CA but no client certificate: etcd refuses the handshake.
    let anonymous = EtcdTls::from_files(&certs.join("ca.pem"), None).expect("settings");
    let refused = EtcdUdb::open_with_tls(&url, anonymous).expect_err("no client certificate");
    assert!(
        refused.to_string().contains("etcd unreachable"),
        "{refused}"
    );

    // Settings that cannot work are refused when made, naming the file.
    let missing = EtcdTls::from_files(&dir.join("nowhere.pem"), None).expect_err("no file");
    assert!(missing.to_string().contains("nowhere.pem"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}
