//! The reconcile core: a fixed pipeline of typed steps, pure where it can be.
//!
//! 1. [`validate`](mod@validate): spec -> [`validate::ValidSpec`] (pure).
//! 2. [`credentials`]: which AccessKey to use (pure over the Secrets the caller looked up).
//! 3. [`observe`]: `ListChatGroup`, shared per space ([`observe::SharedLister`]), only when due.
//! 4. [`plan`]: write or not, and what (pure).
//! 5. act: `UpdateChatGroup` under `managementPolicy: Manage` only.
//! 6. [`status`]: conditions, failure classes, backoff (pure).
//! 7. requeue.
//!
//! [`engine::reconcile`] runs the steps; the controller, `cams-operator reconcile` and
//! `cams-operator demo` all call it.

pub mod credentials;
pub mod engine;
pub mod lifecycle;
pub mod names;
pub mod observe;
pub mod plan;
pub mod status;
pub mod validate;

pub use engine::{EventSpec, EventType, Input, Outcome, Requeue, WriteRecord, events, reconcile};
pub use observe::SharedLister;
pub use plan::{Plan, applied_hash};
pub use status::{Failure, status_changed};
pub use validate::{SpecErrors, ValidSpec, validate};
