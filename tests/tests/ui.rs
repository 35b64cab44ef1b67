//! Compile errors are product: every mistake in macro input has a case here
//! with the exact message the user sees.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/interface/*.rs");
    t.compile_fail("ui/state/*.rs");
    t.compile_fail("ui/lock/*.rs");
    t.pass("ui/pass/*.rs");
}
