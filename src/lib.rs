//! localserver: a single-threaded, edge-triggered epoll HTTP/1.1 server.
//!
//! Data flows one way: `server` reads bytes → `http` parses → `handlers`
//! decide → `server` writes. `http` and `config` are pure (no descriptors);
//! `sys` is the only module where `unsafe_code` is allowed.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub mod http;
pub mod server;
#[allow(unsafe_code)]
pub mod sys;
#[doc(hidden)]
pub mod testkit;

/// The version reported by `-v` and in the `Server` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("localserver/", env!("CARGO_PKG_VERSION"));
