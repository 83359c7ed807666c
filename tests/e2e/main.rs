//! The end-to-end suite in one test binary (one link step instead of one per
//! file): each module starts the real `localserver` binary with a
//! configuration it writes, and speaks raw HTTP to it. The heavy tests that
//! must not share the two cores with anything else (attacks, soak) and the
//! in-memory fuzzer are separate binaries, which cargo runs one after the
//! other.

#[path = "../common/mod.rs"]
mod common;

mod bodies;
mod browser;
mod cgi;
mod cgi_faults;
mod cli;
mod cold;
mod conformance;
mod connections;
mod errors;
mod fs_attacks;
mod http_features;
mod internal_redirects;
mod limits;
mod listeners;
mod logs;
mod metrics;
mod orphans;
mod paths;
mod php;
mod privileges;
mod proxy_protocol;
mod ranges_encodings;
mod sessions;
mod signals;
mod site;
mod site_dynamic;
mod smuggling;
mod static_files;
mod upload_safety;
mod uploads;
mod vhosts;
mod workers;
