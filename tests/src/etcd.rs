//! A real etcd server for the tests that need one: Debian's `etcd-server`
//! (`scripts/test` installs it), started on free loopback ports with its
//! data in memory (`/dev/shm`), and stopped when the test process ends.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use upshift::rpc::tls::{Identity, Role, dev::DevCa};
use upshift::udb::{EtcdTls, EtcdUdb};

/// A running etcd.
#[derive(Debug)]
pub struct EtcdServer {
    endpoint: String,
    /// With TLS: the directory of its CA (`ca.pem`), its certificate and a
    /// client's (`coordinator.pem`, `coordinator.key`).
    tls: Option<PathBuf>,
    /// The wrapper shell; it kills etcd when this closes (the test
    /// process exits, or [`EtcdServer::stop`]).
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

/// Where etcd is: `UPSHIFT_ETCD_BIN`, else `etcd` on the `PATH`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("UPSHIFT_ETCD_BIN") {
        return PathBuf::from(path);
    }
    crate::on_path("etcd").unwrap_or_else(|| {
        panic!(
            "etcd is not installed, and this test needs a real one: run `scripts/test` \
             (it installs Debian's etcd-server), or `apt-get install etcd-server`, or set \
             UPSHIFT_ETCD_BIN"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl EtcdServer {
    /// Starts a new etcd and waits until it answers.
    pub fn start(label: &str) -> Self {
        Self::start_with(label, None)
    }

    /// Starts a new etcd that speaks only TLS and accepts only clients
    /// with a certificate of its CA, made in `dir` (see [`Self::tls`]).
    pub fn start_tls(label: &str, dir: &std::path::Path) -> Self {
        let ca = DevCa::open_or_create(dir).expect("a CA");
        let identity = Identity::new(Role::Coordinator, "upshift-test");
        ca.issue(dir, "etcd", &identity, &["127.0.0.1".into()])
            .expect("etcd's certificate");
        ca.issue(dir, "coordinator", &identity, &[])
            .expect("a client certificate");
        Self::start_with(label, Some(dir.to_path_buf()))
    }

    /// A client's TLS settings for a server from [`Self::start_tls`].
    pub fn tls(&self) -> Option<EtcdTls> {
        let dir = self.tls.as_ref()?;
        let tls = EtcdTls::from_files(
            &dir.join("ca.pem"),
            Some((&dir.join("coordinator.pem"), &dir.join("coordinator.key"))),
        );
        Some(tls.expect("the client's TLS settings"))
    }

    /// Opens the UDB of `prefix` on it, with TLS if it speaks it.
    pub fn open(&self, prefix: &str) -> Result<EtcdUdb, upshift::udb::UdbError> {
        match self.tls() {
            Some(tls) => EtcdUdb::open_with_tls(&self.url(prefix), tls),
            None => EtcdUdb::open(&self.url(prefix)),
        }
    }

    fn start_with(label: &str, tls: Option<PathBuf>) -> Self {
        let (client, peer) = (free_port(), free_port());
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let data = base.join(format!("upshift-etcd-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let endpoint = format!("127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://{endpoint}");
        let certificates: Vec<String> = match &tls {
            Some(dir) => vec![
                "--cert-file".into(),
                dir.join("etcd.pem").display().to_string(),
                "--key-file".into(),
                dir.join("etcd.key").display().to_string(),
                "--client-cert-auth".into(),
                "--trusted-ca-file".into(),
                dir.join("ca.pem").display().to_string(),
            ],
            None => Vec::new(),
        };
        // The shell holds etcd and ends it once its stdin closes: when this
        // process exits, however it exits, etcd goes with it.
        let script = r#"etcd="$1"; data="$2"; shift 2
"$etcd" --data-dir "$data" "$@" >/dev/null 2>&1 & pid=$!
read -r _ignored
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(binary())
            .arg(&data)
            .args(["--name", "upshift-test"])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("upshift-test={peer_url}")])
            .args(&certificates)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start etcd");
        let stdin = child.stdin.take();
        let server = EtcdServer {
            endpoint,
            tls,
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match server.open("/upshift-ready/") {
                Ok(_) => return server,
                Err(e) if Instant::now() > deadline => {
                    panic!("etcd did not answer within 30 s: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// One etcd for the whole test process, started on first use.
    pub fn shared() -> &'static EtcdServer {
        static SHARED: OnceLock<EtcdServer> = OnceLock::new();
        SHARED.get_or_init(|| EtcdServer::start("shared"))
    }

    /// `HOST:PORT` of its client port.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The UDB URL of `prefix` on this server.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}{prefix}", self.endpoint)
    }

    /// Stops it (its data goes with it).
    pub fn stop(&self) {
        if let Some(mut stdin) = self.stdin.lock().map(|mut s| s.take()).ok().flatten() {
            let _ = stdin.write_all(b"\n");
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}
