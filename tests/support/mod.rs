//! Support code shared by the integration tests. Include it from a test binary with
//! `mod support;` (each binary uses only part of it, hence `dead_code` is allowed here).
#![allow(dead_code)]

pub mod fixtures;
pub mod kube_server;
