//! The controller's own failures: those of its Kubernetes I/O (reading Secrets, writing the
//! status), each with a bounded category for metrics. CAMS failures are not among them: the
//! reconcile core turns those into status.

use std::time::Duration;

/// Failures of the controller's own Kubernetes I/O. CAMS failures are not errors here: the
/// reconcile core turns them into status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a Secret failed (other than not found).
    #[error("reading Secret {namespace}/{name} failed: {source}")]
    ReadSecret {
        namespace: String,
        /// Secret name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing the status of ChatGroup {namespace}/{name} failed: {source}")]
    PatchStatus {
        namespace: String,
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// A Kubernetes API call did not finish in time.
    #[error("{operation} timed out after {timeout:?}")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
        timeout: Duration,
    },
    /// The object has no namespace or name (cannot happen for namespaced objects).
    #[error("object has no namespace or name")]
    MissingKey,
}

impl Error {
    /// Bounded category for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "kube_read_secret",
            Error::PatchStatus { .. } => "kube_patch_status",
            Error::Timeout { .. } => "kube_timeout",
            Error::MissingKey => "kube_missing_key",
        }
    }
}
