//! The key-value example's SOs and transforms meet the conditions of a
//! correct upgrade, for v1 → v2 and v2 → v3.

use upshift_examples::kv;

#[test]
fn the_key_value_upgrades_conform() {
    kv::conformance().check();
}

/// The check can fail: a v3 future SO's `Expiry::Unknown` is an answer the
/// v3 object never gives, so without the declaration that accepts it the
/// v2 → v3 future SO check fails, and says where.
#[test]
fn without_its_declarations_the_v3_future_so_fails() {
    let report = upshift::conformance::Conformance::new(kv::stages()).run();
    let failure = report
        .failure(2, upshift::conformance::Property::FutureSo)
        .unwrap_or_else(|| panic!("the future SO check passed:\n{report}"));
    assert!(failure.script.contains("Unknown"), "{}", failure.script);
}

/// Stages with a gap between versions are a failure that says so.
#[test]
fn stages_with_a_gap_are_refused() {
    let stages = kv::stages()
        .into_iter()
        .filter(|s| s.version() != 2)
        .collect::<Vec<_>>();
    let report = upshift::conformance::Conformance::new(stages).run();
    assert!(!report.passed());
    assert!(
        report.failures[0]
            .script
            .contains("no gap: they are [1, 3]"),
        "{report}"
    );
}

/// A stage that does not answer newer callers has no future SO to check:
/// the report says so, and the other checks still run.
#[test]
fn a_stage_without_future_sos_skips_that_check_and_says_why() {
    use upshift::node::durable_stage;
    use upshift::state::Durable;
    use upshift_examples::kv::{StoreV1, StoreV2, interface, state};
    let stages: Vec<Box<dyn upshift::node::Stage>> = vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            interface::v1::service(StoreV1::new(s))
        })),
        Box::new(durable_stage(|s: Durable<state::v2::Store>| {
            interface::v2::service(StoreV2::new(s))
        })),
    ];
    let report = upshift::conformance::Conformance::new(stages)
        .cases(32)
        .run();
    assert!(report.passed(), "{report}");
    assert_eq!(report.checked.len(), 2, "transform and past SO: {report}");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.contains("future SO not checked") && s.contains("v1::service_with_future")),
        "{report}"
    );
}
