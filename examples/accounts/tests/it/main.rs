//! Integration tests of the `accounts` service, in one test binary to keep link time down.
//!
//! `api` starts the app in-process on `127.0.0.1:0` with a temporary database and drives it over real HTTP;
//! `overload` holds the write lock from another process to see the 503 with `Retry-After`; `process` runs
//! the real binary, stops it with SIGTERM and starts it again on the same directory.

mod api;
mod metrics;
mod overload;
mod process;
mod support;
