//! Webhook notices over real HTTP: every change of a rollout's state is
//! POSTed as JSON once durable, in order, and a refused delivery is tried
//! again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use upshift::coordinator::api::v6::Coordinator as _;
use upshift::coordinator::api::{Control, Outcome, Slot};
use upshift::coordinator::{Coordinator, Webhook};
use upshift::schedule::Registry;
use upshift::udb::MemoryUdb;
use upshift::upgrade::{NodeInfo, Upgrade};

/// A receiver on loopback: answers 503 to the first request and 200 to the
/// rest, and hands over each body it accepted.
fn receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/hooks/upshift",
        listener.local_addr().expect("addr")
    );
    let (bodies, arrived) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            assert_eq!(line, "POST /hooks/upshift HTTP/1.1\r\n");
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("header");
                if header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().expect("a length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let mut stream = reader.into_inner();
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            if n > 0 {
                let _ = bodies.send(String::from_utf8(body).expect("utf-8"));
            }
        }
    });
    (url, arrived)
}

fn upgrade(from: u32, schedule: &str) -> Upgrade {
    Upgrade {
        service: "Kv".into(),
        from,
        to: from + 1,
        schedule: schedule.parse().expect("a schedule"),
        artifact: "in-process".into(),
        notes: String::new(),
    }
}

#[tokio::test]
async fn every_rollout_state_change_is_posted_in_order() {
    let (url, arrived) = receiver();
    let c = Coordinator::open(MemoryUdb::new(), Registry::default())
        .expect("open")
        .with_webhook(Webhook::parse(&url).expect("a URL"));
    c.register(NodeInfo {
        id: "n1".into(),
        address: "a".into(),
        group: "g".into(),
        service: "Kv".into(),
        version: 1,
    })
    .await
    .expect("registered");
    let first = c.publish(upgrade(1, "rolling:1")).await.expect("published");
    assert_eq!(
        c.request_slot("n1".into(), first).await.expect("slot"),
        Slot::Granted
    );
    c.report("n1".into(), first, Outcome::Upgraded { version: 2 })
        .await
        .expect("reported");
    let second = c.publish(upgrade(2, "rolling:1")).await.expect("published");
    assert_eq!(
        c.request_slot("n1".into(), second).await.expect("slot"),
        Slot::Granted
    );
    c.report(
        "n1".into(),
        second,
        Outcome::Failed {
            reason: "disk \"full\"".into(),
        },
    )
    .await
    .expect("reported");
    c.control(second, Control::Abort).await.expect("aborted");
    // A second node keeps the third rollout open after n1's upgrade.
    c.register(NodeInfo {
        id: "n2".into(),
        address: "b".into(),
        group: "g".into(),
        service: "Kv".into(),
        version: 2,
    })
    .await
    .expect("registered");
    let third = c.publish(upgrade(2, "rolling:1")).await.expect("published");
    assert_eq!(
        c.request_slot("n1".into(), third).await.expect("slot"),
        Slot::Granted
    );
    c.report("n1".into(), third, Outcome::Upgraded { version: 3 })
        .await
        .expect("reported");
    let back = c.rollback(third).await.expect("rolled back");

    let mut got = Vec::new();
    while got.len() < 8 {
        got.push(
            arrived
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("notices so far: {got:#?}")),
        );
    }
    let kinds: Vec<&str> = got
        .iter()
        .map(|b| {
            b.strip_prefix("{\"kind\":\"")
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("a notice: {b}"))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "published",
            "final",
            "published",
            "halted",
            "aborted",
            "published",
            "aborted",
            "rollback"
        ]
    );
    assert!(
        got[7].contains(&format!(
            "\"upgrade\":{back},\"service\":\"Kv\",\"from\":3,\"to\":2,"
        )),
        "{}",
        got[7]
    );
    assert!(
        got[1].contains(&format!("\"upgrade\":{first},")),
        "{}",
        got[1]
    );
    assert!(
        got[3].contains("\"reason\":\"node n1 failed to upgrade: disk \\\"full\\\"\"")
            && got[3].contains("\"text\":\"upgrade #2 of Kv v2 -> v3 halted: node n1 failed"),
        "{}",
        got[3]
    );
    assert!(
        arrived.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing more"
    );
}
