//! cams-operator keeps Alibaba Cloud Chat App Message Service (CAMS) WhatsApp groups in line with
//! `ChatGroup` custom resources.
//!
//! Module map: [`crd`] (the resource and fixed names), [`cams`] (the CAMS API: signing, client,
//! errors), [`reconcile`] (the reconcile pipeline), [`cli`] (the command line).

pub mod cams;
pub mod cli;
pub mod crd;
pub mod reconcile;
