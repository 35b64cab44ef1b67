//! One `put` round trip over loopback TCP, five ways, in one run:
//!
//! - `a_hand_written`: upshift's framing with a hand-written server, no version dispatch;
//! - `b_same_version`: a v3 upshift client calling a v3 node (the object);
//! - `c_one_past_so`: a v2 client on the v3 node (one past SO);
//! - `d_two_past_sos`: a v1 client on the v3 node (two chained past SOs);
//! - `e_tarpc`: the same service in tarpc (bincode over TCP);
//! - `f_same_version_tls`: `b_same_version` over mutual TLS 1.3 (rustls,
//!   `ring`; certificates from a development CA made for the run).
//!
//! `latency` makes one call per iteration; `throughput` makes 128 concurrent
//! calls on one connection per iteration. Run: `cargo bench -p upshift-benches --bench rpc`.

use std::sync::LazyLock;
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use futures::future::join_all;
use tarpc::context;
use tarpc::tokio_serde::formats::Bincode;
use upshift::{Connection, Server};
use upshift_examples::kv::interface::{v1, v2, v3};

const VALUE: &str = "a value of sixty-four bytes, about what a small record weighs....";
const BATCH: usize = 128;

#[tarpc::service]
trait TarpcKv {
    async fn put(key: String, value: String, ttl_secs: Option<u64>);
}

#[derive(Clone)]
struct TarpcStore(std::sync::Arc<upshift_examples::kv::StoreV3>);

impl TarpcKv for TarpcStore {
    async fn put(self, _: context::Context, key: String, value: String, ttl_secs: Option<u64>) {
        use upshift_examples::kv::interface::v3::Kv;
        self.0.put(key, value, ttl_secs).await;
    }
}

struct Setup {
    rt: tokio::runtime::Runtime,
    raw: Connection,
    c3: v3::Client,
    c2: v2::Client,
    c1: v1::Client,
    tarpc: TarpcKvClient,
    tls: v3::Client,
    _listener: upshift::Listener,
    _tls_listener: upshift::Listener,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    // One thread runs clients and servers alike: the loopback sockets are
    // real, and no cross-core wake-ups add noise to the comparison.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let setup = rt.block_on(async {
        let baseline = upshift_benches::hand_written_server()
            .await
            .expect("baseline server");
        let raw = Connection::connect(baseline)
            .await
            .expect("connect baseline");

        let server = Server::new(upshift_examples::kv::service(3, false));
        let listener = server.listen("127.0.0.1:0").await.expect("bind");
        let conn = Connection::connect(listener.local_addr())
            .await
            .expect("connect");

        // Both ends set TCP_NODELAY, as upshift does, so neither waits on Nagle.
        let tarpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("tarpc bind");
        let tarpc_addr = tarpc_listener.local_addr().expect("tarpc addr");
        tokio::spawn(async move {
            use futures::StreamExt;
            use tarpc::server::Channel;
            let store = TarpcStore(Default::default());
            while let Ok((stream, _)) = tarpc_listener.accept().await {
                stream.set_nodelay(true).expect("nodelay");
                let transport =
                    tarpc::serde_transport::Transport::from((stream, Bincode::default()));
                let channel = tarpc::server::BaseChannel::with_defaults(transport);
                let serve = store.clone().serve();
                tokio::spawn(channel.execute(serve).for_each(|call| async move {
                    tokio::spawn(call);
                }));
            }
        });
        let stream = tokio::net::TcpStream::connect(tarpc_addr)
            .await
            .expect("tarpc connect");
        stream.set_nodelay(true).expect("nodelay");
        let transport = tarpc::serde_transport::Transport::from((stream, Bincode::default()));
        let tarpc = TarpcKvClient::new(tarpc::client::Config::default(), transport).spawn();

        let (tls, tls_listener) = tls_client().await;
        (raw, conn, tarpc, listener, tls, tls_listener)
    });
    let (raw, conn, tarpc, listener, tls, tls_listener) = setup;
    Setup {
        rt,
        raw,
        c3: v3::Client::new(conn.clone()),
        c2: v2::Client::new(conn.clone()),
        c1: v1::Client::new(conn),
        tarpc,
        tls,
        _listener: listener,
        _tls_listener: tls_listener,
    }
});

/// A v3 node served with mutual TLS and a v3 client with its certificate.
async fn tls_client() -> (v3::Client, upshift::Listener) {
    use upshift::rpc::tls::dev::DevCa;
    use upshift::rpc::{ClientTls, Identity, Role, ServerTls, TlsFiles};
    let dir = std::env::temp_dir().join(format!("upshift-bench-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ca = DevCa::open_or_create(&dir).expect("a CA");
    let hosts = ["127.0.0.1".to_string()];
    ca.issue(&dir, "node", &Identity::new(Role::Node, "n1"), &hosts)
        .expect("node certificate");
    ca.issue(
        &dir,
        "client",
        &Identity::new(Role::Reader, "bench"),
        &hosts,
    )
    .expect("client certificate");
    let config = upshift::ServerConfig {
        tls: Some(ServerTls::from_files(&TlsFiles::in_dir(&dir, "node")).expect("server TLS")),
        ..upshift::ServerConfig::default()
    };
    let server = Server::with_config(upshift_examples::kv::service(3, false), config);
    let listener = server.listen("127.0.0.1:0").await.expect("bind");
    let config = upshift::ClientConfig {
        tls: Some(ClientTls::from_files(&TlsFiles::in_dir(&dir, "client")).expect("client TLS")),
        ..upshift::ClientConfig::default()
    };
    let conn = Connection::connect_with(listener.local_addr(), config)
        .await
        .expect("connect over TLS");
    let _ = std::fs::remove_dir_all(&dir);
    (v3::Client::new(conn), listener)
}

fn key(i: usize) -> String {
    format!("key-{:04}", i % 1000)
}

async fn hand_written(i: usize) {
    let s = &*SETUP;
    let options = upshift::CallOptions {
        deadline: Duration::from_secs(10),
        retry: None,
    };
    // The same owned arguments a generated client's caller passes.
    let (key, value, ttl_secs) = (key(i), String::from(VALUE), None::<u64>);
    let () = s
        .raw
        .call("Kv", 3, 1, &(&key, &value, &ttl_secs), &options)
        .await
        .expect("put");
}

async fn same_version(i: usize) {
    SETUP.c3.put(key(i), VALUE.into(), None).await.expect("put");
}

async fn one_past_so(i: usize) {
    SETUP.c2.put(key(i), VALUE.into(), None).await.expect("put");
}

async fn two_past_sos(i: usize) {
    SETUP.c1.put(key(i), VALUE.into()).await.expect("put");
}

async fn same_version_tls(i: usize) {
    SETUP
        .tls
        .put(key(i), VALUE.into(), None)
        .await
        .expect("put");
}

async fn with_tarpc(i: usize) {
    let mut ctx = context::current();
    ctx.deadline = std::time::Instant::now() + Duration::from_secs(10);
    SETUP
        .tarpc
        .put(ctx, key(i), VALUE.into(), None)
        .await
        .expect("put");
}

macro_rules! variants {
    ($($name:ident => $call:ident),* $(,)?) => {
        mod latency {
            use super::*;
            $(
                #[divan::bench]
                fn $name(b: Bencher) {
                    let s = &*SETUP;
                    let mut i = 0;
                    b.bench_local(|| {
                        i += 1;
                        s.rt.block_on($call(i))
                    });
                }
            )*
        }

        mod throughput {
            use super::*;
            $(
                #[divan::bench]
                fn $name(b: Bencher) {
                    let s = &*SETUP;
                    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
                        s.rt.block_on(join_all((0..BATCH).map($call)))
                    });
                }
            )*
        }
    };
}

variants! {
    a_hand_written => hand_written,
    b_same_version => same_version,
    c_one_past_so => one_past_so,
    d_two_past_sos => two_past_sos,
    e_tarpc => with_tarpc,
    f_same_version_tls => same_version_tls,
}

fn main() {
    divan::main();
}
