//! The chapters of the upshift book as doc comments, so that `cargo test`
//! compiles and runs every Rust block in them.

#[doc = include_str!("src/quickstart.md")]
pub mod quickstart {}

#[doc = include_str!("src/introduction.md")]
pub mod introduction {}

#[doc = include_str!("src/tutorial.md")]
pub mod tutorial {}

#[doc = include_str!("src/state.md")]
pub mod state {}

#[doc = include_str!("src/node.md")]
pub mod node {}

#[doc = include_str!("src/coordinator.md")]
pub mod coordinator {}

// The chapter shows the conformance test as a user's crate has it, under
// `#[test]`; the example's own runs in `examples/tests/conformance.rs`.
#[allow(clippy::test_attr_in_doctest)]
#[doc = include_str!("src/proving.md")]
pub mod proving {}

#[doc = include_str!("src/reference/interface.md")]
pub mod interface {}

#[doc = include_str!("src/reference/state.md")]
pub mod state_reference {}

#[doc = include_str!("src/reference/compatibility.md")]
pub mod compatibility {}

#[doc = include_str!("src/reference/kv-versions.md")]
pub mod kv_versions {}

#[doc = include_str!("src/reference/wire-format.md")]
pub mod wire_format {}

#[doc = include_str!("src/operations.md")]
pub mod operations {}

#[doc = include_str!("src/restart.md")]
pub mod restart {}

#[doc = include_str!("src/security.md")]
pub mod security {}

#[doc = include_str!("src/performance.md")]
pub mod performance {}

#[doc = include_str!("../README.md")]
pub mod readme {}
