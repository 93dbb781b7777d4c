//! The controller: kube-rs wiring around the pure reconcile core ([`crate::reconcile`]).
//!
//! One kube-rs controller per watched scope (all namespaces, or one per `--namespace`) drives
//! the reconcile of each ChatGroup. [`run`] below starts them; the rest is split by concern:
//!
//! - start-up: [`command`] is `cams-operator run` — it reads the command line and the
//!   environment once, builds the [`Settings`] and [`Scope`] (`settings`) and the [`Clock`]
//!   (`clock`), runs the [`preflight`] checks and, with `--leader-election`, holds the Lease
//!   ([`leader`]) while the controllers run;
//! - shared state: [`Context`] (`context`) holds the clients, budgets, metrics and memory
//!   every reconcile uses; [`kube_client`] paces requests to the API server, [`flow`] the CAMS
//!   calls (global token bucket and concurrency limit, leadership gate);
//! - watches (`watches`): ChatGroups in the compact form of [`cached`] (spec parsed once as it
//!   arrives, so one malformed object gets an `InvalidSpec` status instead of stalling the
//!   watch of all the others; spec and status kept [`packed`]), and Secrets as metadata only;
//!   a changed Secret requeues exactly the ChatGroups that use it;
//! - one reconcile (`reconcile_entry`): [`reconcile_object`] reads the object's Secrets
//!   ([`secrets`]), adds what the controller remembers about the object (`memory`: its own
//!   last write, the last read, a terminal failure's inputs), runs the core, and writes the
//!   outcome (`status_write`): one server-side apply patch to `/status` under the
//!   `cams-operator` field manager, only when more than timestamps changed, and the
//!   [`events`];
//! - failures of the controller's own Kubernetes calls are an [`Error`] (`error`), retried
//!   after [`KUBE_ERROR_REQUEUE`]; CAMS failures are status, decided by the core.

pub mod cached;
mod clock;
pub mod command;
mod context;
mod error;
pub mod events;
pub mod flow;
pub mod kube_client;
pub mod leader;
mod lifecycle;
mod memory;
pub mod packed;
pub mod preflight;
mod reconcile_entry;
pub mod secrets;
mod settings;
mod status_write;
mod watches;

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::cams::CamsApi;

pub use self::clock::Clock;
pub use self::command::shutdown_signal;
pub use self::context::{Context, KUBE_CALL_TIMEOUT, RECONCILES_PER_CAMS_SLOT, operations};
pub use self::error::Error;
pub use self::memory::MEMORY_PRUNE_INTERVAL;
pub use self::reconcile_entry::{KUBE_ERROR_REQUEUE, reconcile_object};
pub use self::settings::{Scope, Settings};
pub use self::status_write::chatgroup_resource;
pub use self::watches::{READY_POLL, listed};

use self::memory::prune_memory;
use self::reconcile_entry::{error_policy, reconcile_entry};
use self::watches::{build_controller, note_watch};

/// Runs the controllers for `scope` until `shutdown` flips to `true`, then lets in-flight
/// reconciles finish (CAMS calls finish or time out; a status patch is one request, so none is
/// left half written). `readiness` is set once every watch has completed its first list.
pub async fn run<C: CamsApi + 'static>(
    ctx: Arc<Context<C>>,
    scope: Scope,
    shutdown: watch::Receiver<bool>,
) {
    let readiness = ctx.readiness.clone();
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for namespace in namespaces {
        let (controller, store) =
            build_controller(&ctx, namespace.as_deref(), &scope, shutdown.clone());
        stores.push(store);
        let readiness = ctx.readiness.clone();
        let ctx = ctx.clone();
        controllers.push(
            controller
                .run(reconcile_entry::<C>, error_policy::<C>, ctx)
                .for_each(move |result| {
                    note_watch(&readiness, &result);
                    async move {
                        if let Err(err) = result {
                            debug!(error = %err, "controller event");
                        }
                    }
                }),
        );
    }
    *ctx.peers
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = stores.clone();
    let pruner = tokio::spawn(prune_memory(ctx.clone(), stores.clone()));
    tokio::spawn(async move {
        for store in stores {
            if !listed(&store, None).await {
                return;
            }
        }
        info!("first list of ChatGroups completed; ready");
        readiness.set_ready();
    });
    futures::future::join_all(controllers).await;
    pruner.abort();
    info!("controllers stopped");
}
