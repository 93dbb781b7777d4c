//! cams-operator keeps Alibaba Cloud Chat App Message Service (CAMS) WhatsApp groups in line with
//! `ChatGroup` custom resources.
//!
//! Module map:
//! - [`crd`]: the resource and the fixed names;
//! - [`cams`]: the CAMS API (signing, the HTTP client, typed errors);
//! - [`reconcile`]: the reconcile pipeline (pure planning core behind thin I/O);
//! - [`controller`]: the kube-rs wiring of `cams-operator run`;
//! - [`identity`]: the operator's own Alibaba Cloud identity (environment AccessKey or RRSA);
//! - [`oneshot`]: `reconcile` and `demo`, without a cluster;
//! - [`metrics`], [`admin`] (probes and `/metrics`) and [`telemetry`] (logs);
//! - [`cli`]: the command line; [`rbac`]: the Kubernetes API access the operator needs, which
//!   the Helm chart grants.
//!
//! The CAMS simulator that tests, the demo and the benchmarks run against is the separate crate
//! `cams-sim` (`crates/cams-sim`), which does not depend on this one.

pub mod admin;
pub mod cams;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod identity;
pub mod metrics;
pub mod oneshot;
pub mod rbac;
pub mod reconcile;
pub mod telemetry;
