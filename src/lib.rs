//! cams-operator keeps Alibaba Cloud Chat App Message Service (CAMS) WhatsApp groups in line with
//! `ChatGroup` custom resources.
//!
//! Module map: [`crd`] (the resource and fixed names), [`cams`] (the CAMS API: signing, client,
//! errors), [`reconcile`] (the reconcile pipeline), [`oneshot`] (`reconcile` and `demo` without
//! a cluster), [`sim`] (the CAMS simulator used by tests, the demo and benchmarks), [`cli`] (the command line), [`rbac`] (the Kubernetes API access the
//! operator needs, which the Helm chart grants), [`controller`] (the kube-rs wiring of `run`),
//! [`metrics`], [`admin`] (probes and `/metrics`) and [`telemetry`] (logs).

pub mod admin;
pub mod cams;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod metrics;
pub mod oneshot;
pub mod rbac;
pub mod reconcile;
pub mod sim;
pub mod telemetry;
