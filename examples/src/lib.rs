//! Runnable upshift services. [`kv`] is the versioned key-value store used by
//! the demo, the tests and the book.

pub mod kv;
