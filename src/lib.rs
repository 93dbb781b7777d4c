//! cams-operator keeps Alibaba Cloud Chat App Message Service (CAMS) WhatsApp groups in line with
//! `ChatGroup` custom resources.
//!
//! Module map: [`crd`] (the resource and fixed names), [`cams`] (the CAMS API: signing, client,
//! errors), [`identity`] (the operator's own Alibaba Cloud identity: environment AccessKey or
//! RRSA), [`sim`] (the CAMS simulator used by tests, the demo and benchmarks), [`cli`] (the
//! command line), [`rbac`] (the Kubernetes API access the operator needs, which the Helm chart
//! grants).

pub mod cams;
pub mod cli;
pub mod crd;
pub mod identity;
pub mod rbac;
pub mod sim;
