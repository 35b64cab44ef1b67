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
