//! Property tests: the frame decoder and the version dispatcher take
//! arbitrary bytes without panicking, and the node stays healthy.

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upshift::wire::{self, Frame};
use upshift::{Dispatch, DispatchError, Server};
use upshift_examples::kv::{StoreV1, StoreV2, StoreV3, interface};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Bodies that are mostly well-formed headers with random tails, plus pure noise.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        any::<u64>(),
        0u32..5,
        0u16..6,
        prop::sample::select(vec!["Kv", "Other", ""]),
    );
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (header, prop::collection::vec(any::<u8>(), 0..48)).prop_map(
            |((id, v, m, svc), payload)| {
                let mut out = Vec::new();
                // begin_call refuses an empty name; write one by hand so the
                // decoder still sees it.
                let name = if svc.is_empty() { "X" } else { svc };
                let start = wire::begin_call(&mut out, id, name, v, m).expect("a valid name");
                if svc.is_empty() {
                    out.truncate(out.len() - 2);
                    out.push(0);
                }
                out.extend_from_slice(&payload);
                wire::finish(&mut out, start);
                out.split_off(4)
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn decode_never_panics_and_calls_round_trip(body in bodies()) {
        if let Ok(Frame::Call(c)) = wire::decode(&body) {
            let mut out = Vec::new();
            let start = wire::begin_call(&mut out, c.call_id, c.service, c.version, c.method)
                .expect("a decoded call has a valid name");
            out.extend_from_slice(c.payload);
            wire::finish(&mut out, start);
            prop_assert_eq!(&out[4..], &body[..]);
        }
    }

    #[test]
    fn read_frame_never_panics(stream in prop::collection::vec(any::<u8>(), 0..80), max in 0usize..64) {
        let rt = runtime();
        rt.block_on(async {
            let mut reader = &stream[..];
            let mut buf = Vec::new();
            let mut frames = 0;
            while let Ok(true) = wire::read_frame(&mut reader, max, &mut buf).await {
                prop_assert!(buf.len() <= max);
                frames += 1;
                prop_assert!(frames <= stream.len());
            }
            Ok(())
        })?;
    }
}

/// Feeds one call to a dispatcher and checks the outcome is typed and
/// consistent with the method index.
fn check_dispatch(d: &impl Dispatch, method: u16, payload: &[u8]) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let result = runtime().block_on(d.call(method, payload, &mut out));
    let count = d.schema().methods.len() as u16;
    match result {
        Ok(()) => prop_assert!(method < count),
        Err(DispatchError::UnknownMethod { method: m, .. }) => prop_assert!(m >= count),
        Err(DispatchError::BadRequest { .. } | DispatchError::Disallowed(_)) => {
            prop_assert!(method < count)
        }
        Err(e) => prop_assert!(false, "unexpected {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1000)))]

    #[test]
    fn dispatch_takes_any_method_and_payload(method in 0u16..8, payload in prop::collection::vec(any::<u8>(), 0..40)) {
        check_dispatch(&interface::v1::Dispatcher(StoreV1::default()), method, &payload)?;
        check_dispatch(&interface::v2::Dispatcher(StoreV2::default()), method, &payload)?;
        check_dispatch(&interface::v3::Dispatcher(StoreV3::default()), method, &payload)?;
        let past = interface::v1::PastSo::new(interface::v2::PastSo::new(StoreV3::default()));
        check_dispatch(&interface::v1::Dispatcher(past), method, &payload)?;
        let future = interface::v3::FutureSo::new(interface::v2::FutureSo::new(StoreV1::default()));
        check_dispatch(&interface::v3::Dispatcher(future), method, &payload)?;
    }

    /// Arbitrary frames on one connection: the node answers or closes it,
    /// and a fresh connection is served normally afterwards.
    #[test]
    fn a_node_survives_any_frames(frames in prop::collection::vec(bodies(), 1..6)) {
        let rt = runtime();
        rt.block_on(async {
            let server = Server::new(upshift_examples::kv::service(2, true));
            let (mut peer, node) = tokio::io::duplex(1 << 16);
            let serving = tokio::spawn(server.clone().serve_connection(node));
            for body in &frames {
                let mut framed = (body.len() as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(body);
                if peer.write_all(&framed).await.is_err() {
                    break;
                }
            }
            peer.shutdown().await.ok();
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).await.ok();
            serving.await.expect("the connection task does not panic");
            let client = interface::v1::Client::new(server.connect_in_memory());
            client.put("k".into(), "v".into()).await.expect("put");
            prop_assert_eq!(client.get("k".into()).await.expect("get"), Some("v".into()));
            Ok(())
        })?;
    }
}

/// Property-test cases: `PROPTEST_CASES` when set (a deeper local run, say
/// `PROPTEST_CASES=1000000`), else `default`, the budget the suite keeps.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
