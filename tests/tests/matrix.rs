//! The mixed-version matrix over loopback TCP: a client of each version
//! calling a node of each version, with and without future SOs. Every call is
//! answered by the object or an SO chain, or refused with the declared
//! `Disallowed` or `VersionUnsupported`.

use upshift::CallError;
use upshift_examples::kv::interface::{Entry, Expiry, v1, v2, v3};
use upshift_tests::kv_node;

fn disallowed<T: std::fmt::Debug>(r: Result<T, CallError>, needle: &str) {
    match r {
        Err(CallError::Disallowed(d)) => assert!(
            d.message().contains(needle),
            "message {d:?} lacks {needle:?}"
        ),
        other => panic!("expected Disallowed containing {needle:?}, got {other:?}"),
    }
}

fn unsupported<T: std::fmt::Debug>(r: Result<T, CallError>, node: u32, call: u32) {
    match r {
        Err(CallError::VersionUnsupported { node: n, call: c }) => assert_eq!((n, c), (node, call)),
        other => {
            panic!("expected VersionUnsupported {{ node: {node}, call: {call} }}, got {other:?}")
        }
    }
}

#[tokio::test]
async fn v1_clients_are_served_by_every_node() {
    for node in 1..=3 {
        for with_future in [false, true] {
            let (_server, _listener, conn) = kv_node(node, with_future).await;
            let c = v1::Client::new(conn.clone());
            c.put("a".into(), "1".into()).await.expect("v1 put");
            assert_eq!(
                c.get("a".into()).await.expect("v1 get"),
                Some("1".into()),
                "node v{node}"
            );
            assert_eq!(c.get("missing".into()).await.expect("v1 get"), None);
            assert_eq!(
                conn.node_version(),
                Some(node),
                "replies carry the node's version"
            );
        }
    }
}

#[tokio::test]
async fn v2_clients_across_nodes() {
    // A v1 node without future SOs cannot serve v2 calls at all.
    let (_s, _l, conn) = kv_node(1, false).await;
    let c = v2::Client::new(conn);
    unsupported(c.put("a".into(), "1".into(), None).await, 1, 2);
    unsupported(c.get("a".into()).await, 1, 2);

    // With its future SO, it serves what v1 can honour and refuses the rest.
    let (_s, _l, conn) = kv_node(1, true).await;
    let c = v2::Client::new(conn.clone());
    c.put("a".into(), "1".into(), None)
        .await
        .expect("put without ttl");
    disallowed(
        c.put("b".into(), "2".into(), Some(5)).await,
        "cannot expire",
    );
    disallowed(c.delete("a".into()).await, "delete needs");
    assert_eq!(c.get("a".into()).await.expect("get"), Some("1".into()));
    assert_eq!(
        c.get("b".into()).await.expect("get"),
        None,
        "a refused put stores nothing"
    );
    // What the v2 caller wrote, a v1 caller reads from the same object.
    let old = v1::Client::new(conn);
    assert_eq!(old.get("a".into()).await.expect("v1 get"), Some("1".into()));

    for node in [2, 3] {
        let (_s, _l, conn) = kv_node(node, false).await;
        let c = v2::Client::new(conn);
        c.put("a".into(), "1".into(), Some(60))
            .await
            .expect("put with ttl");
        c.put("b".into(), "2".into(), None).await.expect("put");
        assert!(c.delete("b".into()).await.expect("delete"), "node v{node}");
        assert!(!c.delete("b".into()).await.expect("delete again"));
        assert_eq!(c.get("a".into()).await.expect("get"), Some("1".into()));
        assert_eq!(c.get("b".into()).await.expect("get"), None);
    }
}

#[tokio::test]
async fn v3_clients_across_nodes() {
    for node in [1, 2] {
        let (_s, _l, conn) = kv_node(node, false).await;
        let c = v3::Client::new(conn);
        unsupported(c.get("a".into()).await, node, 3);
        unsupported(c.keys(String::new()).await, node, 3);
    }

    // v1 node: two chained future SOs (v1 -> v2 -> v3).
    let (_s, _l, conn) = kv_node(1, true).await;
    let c = v3::Client::new(conn);
    c.put("a".into(), "1".into(), None)
        .await
        .expect("put through two future SOs");
    disallowed(
        c.put("b".into(), "2".into(), Some(1)).await,
        "cannot expire",
    );
    disallowed(c.delete("a".into()).await, "delete needs");
    disallowed(c.keys(String::new()).await, "keys needs");
    let unknown = Entry {
        value: "1".into(),
        expiry: Expiry::Unknown,
    };
    assert_eq!(c.get("a".into()).await.expect("get"), Some(unknown.clone()));

    // v2 node: one future SO.
    let (_s, _l, conn) = kv_node(2, true).await;
    let c = v3::Client::new(conn);
    c.put("a".into(), "1".into(), Some(60))
        .await
        .expect("put with ttl");
    assert_eq!(c.get("a".into()).await.expect("get"), Some(unknown));
    assert!(c.delete("a".into()).await.expect("delete"));
    disallowed(c.keys(String::new()).await, "keys needs");

    // v3 node: the object itself.
    let (_s, _l, conn) = kv_node(3, true).await;
    let c = v3::Client::new(conn.clone());
    c.put("a".into(), "1".into(), None).await.expect("put");
    c.put("ab".into(), "2".into(), Some(60)).await.expect("put");
    c.put("b".into(), "3".into(), None).await.expect("put");
    let a = c.get("a".into()).await.expect("get").expect("present");
    assert_eq!(a.expiry, Expiry::Never);
    let ab = c.get("ab".into()).await.expect("get").expect("present");
    assert!(matches!(ab.expiry, Expiry::InSecs(59..=60)), "{ab:?}");
    assert_eq!(
        c.keys("a".into()).await.expect("keys"),
        vec!["a".to_string(), "ab".to_string()]
    );
    // A v2 caller on the v3 node sees the value without expiry details.
    let v2c = v2::Client::new(conn);
    assert_eq!(
        v2c.get("ab".into()).await.expect("v2 get"),
        Some("2".into())
    );
}

#[tokio::test]
async fn routes_and_counters_name_the_chain_that_served() {
    let (server, _l, conn) = kv_node(3, true).await;
    let svc = server
        .service(upshift_examples::kv::interface::SERVICE)
        .expect("installed");
    assert_eq!(svc.versions().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(svc.route(1), Some(upshift::Route::PastSo(2)));
    assert_eq!(svc.route(3), Some(upshift::Route::Object));
    assert_eq!(svc.route(4), None);
    v1::Client::new(conn.clone())
        .get("x".into())
        .await
        .expect("v1 get");
    v1::Client::new(conn.clone())
        .get("x".into())
        .await
        .expect("v1 get");
    v3::Client::new(conn).get("x".into()).await.expect("v3 get");
    assert_eq!((svc.served(1), svc.served(2), svc.served(3)), (2, 0, 1));
}
