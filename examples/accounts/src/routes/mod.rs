//! The HTTP handlers: one module per area.
//!
//! [`auth`] holds register, login, me and logout under `/api/v1/auth`; [`health`] answers `/health` for
//! load balancers and the Docker HEALTHCHECK; [`metrics`] serves `/metrics` for Prometheus.

pub mod auth;
pub mod health;
pub mod metrics;
