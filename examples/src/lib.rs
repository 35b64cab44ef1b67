//! Runnable upshift services. [`kv`] is the versioned key-value store used by
//! the demo, the tests and the book; [`node_main`] runs it as a process for
//! restart-mode upgrades.

pub mod demo;
pub mod kv;
pub mod node_main;
