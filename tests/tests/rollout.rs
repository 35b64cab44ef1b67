//! The rollout cases (`common/rollout.rs`) on the embedded redb UDB.

use upshift_tests::cluster::Backend;

const BACKEND: Backend = Backend::Redb;

#[path = "common/rollout.rs"]
mod cases;
