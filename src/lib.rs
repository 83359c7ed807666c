//! localserver: a single-threaded, edge-triggered epoll HTTP/1.1 server.
//!
//! Data flows one way: `server` reads bytes → `http` parses → `handlers`
//! decide → `server` writes. `http` and `config` are pure (no descriptors);
//! `sys` is the only module where `unsafe_code` is allowed.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod config;
// Test-only: the fuzzer that tests/fuzz.rs runs and the seeded random
// numbers of the property tests. Built for the crate's own tests and with
// the `testkit` feature (which only the tests turn on), never into the server.
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub mod http;
pub mod server;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;

/// The version reported by `-v` and in the `Server` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("localserver/", env!("CARGO_PKG_VERSION"));

/// The `Server` header under `server_tokens off`: the product, no version.
pub const SERVER_PRODUCT: &str = "localserver";
