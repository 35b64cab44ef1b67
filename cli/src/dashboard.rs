//! The live dashboard: a page that shows a mixed-version cluster at a
//! glance and steers its rollouts, served over HTTP by `upshift dashboard`
//! (and by `upshift coordinator --dashboard ADDR`).
//!
//! It is a client of the coordinator like the rest of the CLI: it reads
//! `status` and `gates` twice a second through the coordinator's interface
//! (following the leader when given several addresses) and sends pause,
//! resume and abort as `control` calls, approve as `approve` and rollback as `rollback`, with the CLI's identity when `--tls` is set,
//! so the coordinator authorises them as it does the CLI's. The page gets
//! each new status as a server-sent event; it never reloads.
//!
//! | path | |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/status` | the latest status, as JSON |
//! | `GET /api/events` | the same, as server-sent events, each time it changes |
//! | `POST /api/control` | `{"upgrade": 1, "action": "pause" \| "resume" \| "abort" \| "approve" \| "rollback", "token": …}` |
//!
//! A POST must carry the token the page was served with: another site
//! open in the operator's browser cannot steer a rollout through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use upshift::ClientConfig;
use upshift::coordinator::api::{self, Control};
use upshift::upgrade::Coordinators;

const PAGE: &str = include_str!("dashboard.html");
/// How often the coordinator's status is read.
const EVERY: Duration = Duration::from_millis(500);
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 4 * 1024;

/// A running dashboard.
pub struct Dashboard {
    /// Where it serves.
    pub addr: SocketAddr,
}

struct Shared {
    coordinators: Coordinators,
    config: ClientConfig,
    token: String,
    status: watch::Receiver<Arc<String>>,
}

/// Serves the dashboard on `listen` for the coordinators at `coordinators`.
pub async fn serve(
    listen: &str,
    coordinators: Coordinators,
    config: ClientConfig,
) -> std::io::Result<Dashboard> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (publish, status) = watch::channel(Arc::new(unreachable_json("starting")));
    tokio::spawn(poll(coordinators.clone(), config.clone(), publish));
    let shared = Arc::new(Shared {
        coordinators,
        config,
        token: token(),
        status,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ = answer(stream, &shared).await;
            });
        }
    });
    Ok(Dashboard { addr })
}

/// A token no other page can guess: 128 bits from the OS.
fn token() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut random, &mut bytes);
    }
    if bytes == [0; 16] {
        // No /dev/urandom: the time and this process, hashed.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        for (i, b) in seed.bytes().enumerate() {
            bytes[i % 16] = bytes[i % 16].wrapping_mul(31).wrapping_add(b);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unreachable_json(why: &str) -> String {
    json!({"ok": false, "error": why, "at_ms": upshift::clock::now_ms()}).to_string()
}

/// Reads the status every [`EVERY`] and publishes it when it changed.
async fn poll(
    coordinators: Coordinators,
    config: ClientConfig,
    publish: watch::Sender<Arc<String>>,
) {
    let mut client: Option<api::v6::Client> = None;
    loop {
        if client.is_none() {
            match coordinators.connect(&config).await {
                Ok(conn) => {
                    client = Some(api::v6::Client::new(conn).with_deadline(Duration::from_secs(5)))
                }
                Err(e) => {
                    publish.send_replace(Arc::new(unreachable_json(&e.to_string())));
                }
            }
        }
        if let Some(c) = &client {
            let read = async { Ok::<_, upshift::CallError>((c.status().await?, c.gates().await?)) };
            match read.await {
                Ok((status, gates)) => {
                    let text = status_json(&status, &gates).to_string();
                    if **publish.borrow() != text {
                        publish.send_replace(Arc::new(text));
                    }
                }
                Err(e) => {
                    publish.send_replace(Arc::new(unreachable_json(&format!(
                        "the coordinator did not answer: {e}"
                    ))));
                    client = None;
                }
            }
        }
        if publish.is_closed() {
            return;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// The status as the page reads it: the coordinator's view, with each
/// schedule and its gates in their command-line syntax.
fn status_json(
    status: &api::StatusView3,
    gates: &std::collections::BTreeMap<u64, api::GateView6>,
) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    for (id, rollout) in &status.rollouts {
        let entry = &mut value["rollouts"][id.to_string()];
        entry["schedule_text"] = Value::String(rollout.upgrade.schedule.to_string());
        if let Some(g) = gates.get(id) {
            let list: Vec<String> = g.gates.iter().map(ToString::to_string).collect();
            let approval = g
                .gates
                .iter()
                .any(|g| matches!(g, upshift::upgrade::Gate6::Approval { .. }));
            let cohorts: Vec<String> = g.cohorts.iter().map(ToString::to_string).collect();
            entry["gates"] = json!({
                "text": list.join(", "),
                "waiting": g.waiting,
                "judged": cohorts.join("; "),
                "approvable": approval && g.approved_ms.is_none(),
                "approved_by": g.approved_by,
                "approved": g.approved_ms.is_some(),
            });
        }
    }
    json!({"ok": true, "at_ms": upshift::clock::now_ms(), "status": value})
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() >= MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let mut request = lines.next().unwrap_or("").split(' ');
    let (method, path) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    match (method, path) {
        ("GET", "/") => {
            let page = PAGE.replace("{{TOKEN}}", &shared.token);
            respond(&mut stream, "200 OK", "text/html; charset=utf-8", &page).await
        }
        ("GET", "/api/status") => {
            let status = shared.status.borrow().clone();
            respond(&mut stream, "200 OK", "application/json", &status).await
        }
        ("GET", "/api/events") => events(stream, shared.status.clone()).await,
        ("POST", "/api/control") => {
            if length > MAX_BODY {
                return respond(&mut stream, "413 Content Too Large", "text/plain", "").await;
            }
            let mut body = head[end..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            body.truncate(length);
            let (status, answer) = control(shared, &body).await;
            respond(&mut stream, status, "application/json", &answer.to_string()).await
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "not here\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "").await,
    }
}

/// Streams each new status as a server-sent event until the page goes.
async fn events(
    mut stream: TcpStream,
    mut status: watch::Receiver<Arc<String>>,
) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
        .await?;
    loop {
        let current = status.borrow_and_update().clone();
        stream
            .write_all(format!("data: {current}\n\n").as_bytes())
            .await?;
        // A comment now and then finds a page that went away.
        match tokio::time::timeout(Duration::from_secs(15), status.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Ok(()),
            Err(_) => stream.write_all(b": still here\n\n").await?,
        }
    }
}

/// Runs a control the page asked for; the HTTP status and the answer.
async fn control(shared: &Shared, body: &[u8]) -> (&'static str, Value) {
    let refuse = |why: String| json!({"ok": false, "error": why});
    let Ok(asked) = serde_json::from_slice::<Value>(body) else {
        return ("400 Bad Request", refuse("the body is not JSON".into()));
    };
    if asked["token"].as_str() != Some(shared.token.as_str()) {
        return (
            "403 Forbidden",
            refuse("the page's token is missing or wrong: reload the dashboard".into()),
        );
    }
    let action = match asked["action"].as_str() {
        Some("pause") => Steer::Control(Control::Pause),
        Some("resume") => Steer::Control(Control::Resume),
        Some("abort") => Steer::Control(Control::Abort),
        Some("approve") => Steer::Approve,
        Some("rollback") => Steer::Rollback,
        other => {
            return (
                "400 Bad Request",
                refuse(format!(
                    "unknown action {other:?}: pause, resume, abort, approve or rollback"
                )),
            );
        }
    };
    let Some(upgrade) = asked["upgrade"].as_u64() else {
        return ("400 Bad Request", refuse("no upgrade id".into()));
    };
    let conn = match shared.coordinators.connect(&shared.config).await {
        Ok(conn) => conn,
        Err(e) => return ("502 Bad Gateway", refuse(e.to_string())),
    };
    let client = api::v6::Client::new(conn).with_deadline(Duration::from_secs(10));
    let done = match action {
        Steer::Control(action) => client
            .control(upgrade, action)
            .await
            .map(|r| r.map_err(|e| e.to_string())),
        Steer::Approve => client
            .approve(upgrade)
            .await
            .map(|r| r.map_err(|e| e.to_string())),
        Steer::Rollback => client
            .rollback(upgrade)
            .await
            .map(|r| r.map(drop).map_err(|e| e.to_string())),
    };
    match done {
        Ok(Ok(())) => ("200 OK", json!({"ok": true})),
        Ok(Err(e)) => ("409 Conflict", refuse(e)),
        Err(e) => ("502 Bad Gateway", refuse(e.to_string())),
    }
}

/// What an operator asked the dashboard to do to a rollout.
enum Steer {
    Control(Control),
    Approve,
    Rollback,
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
