//! The rollout cases (`common/rollout.rs`) on the etcd UDB, against a real
//! etcd this test process starts (Debian's `etcd-server`; `scripts/test`
//! installs it).

use upshift_tests::cluster::Backend;

const BACKEND: Backend = Backend::Etcd;

#[path = "common/rollout.rs"]
mod cases;
