//! What the controllers watch, and what a watch event triggers.
//!
//! Each controller watches the ChatGroups of one scope (all namespaces, or one `--namespace`),
//! with the `--selector`, in the compact form of [`cached`](super::cached), and the Secrets of
//! the same scope as metadata only (see [`secrets`]). A changed Secret requeues
//! exactly the ChatGroups that use it, so a rotation needs no restart. A watch the API server
//! refuses makes `/readyz` fail with the reason until it works again.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;
use tracing::error;

use crate::admin::Readiness;
use crate::cams::CamsApi;
use crate::reconcile::credentials;

use super::cached::CachedChatGroup;
use super::{Context, Error, Scope, operations, secrets};

/// How often readiness (the first list having completed) is checked.
pub const READY_POLL: Duration = Duration::from_millis(100);

/// The controller of one watched namespace (`None`: all namespaces) of `scope`, and the store
/// of its ChatGroups. It stops taking new work once `shutdown` flips to `true`.
pub(super) fn build_controller<C: CamsApi + 'static>(
    ctx: &Arc<Context<C>>,
    namespace: Option<&str>,
    scope: &Scope,
    shutdown: watch::Receiver<bool>,
) -> (Controller<CachedChatGroup>, Store<CachedChatGroup>) {
    let client = ctx.client.clone();
    // An `Api` of `PartialObjectMeta` lists and watches metadata only.
    let (groups, secrets): (Api<CachedChatGroup>, Api<PartialObjectMeta<Secret>>) = match namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    // Secrets as metadata only, stripped to what identifies a version: their data is read
    // when a ChatGroup needs it (see `secrets`).
    let (secret_store, secret_writer) = reflector::store();
    ctx.secrets.add_store(secret_store);
    let secret_changes = reflector(
        secret_writer,
        watcher(secrets, watcher::Config::default()).modify(secrets::strip),
    )
    .touched_objects();
    let mut config = watcher::Config::default();
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    // The watcher reads each object's resourceVersion (to resume from it) before the object is
    // stowed; the store and the scheduler then key objects by name and namespace alone.
    let (store, writer) = reflector::store();
    let objects = reflector(
        writer,
        watcher(groups, config).modify(CachedChatGroup::stow),
    )
    .applied_objects();
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.max_reconciles));
    let mapper_store = store.clone();
    let controller = controller
        .watches_stream(secret_changes, move |secret: PartialObjectMeta<Secret>| {
            dependents_of_secret(&mapper_store, &secret)
        })
        .graceful_shutdown_on(async move {
            let mut shutdown = shutdown;
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    (controller, store)
}

/// The ChatGroups in `store` that use `secret` (explicitly, or as the namespace default).
fn dependents_of_secret(
    store: &Store<CachedChatGroup>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<CachedChatGroup>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    store
        .state()
        .into_iter()
        .filter(|group| group.namespace() == namespace)
        .filter(|group| {
            group
                .spec()
                .is_ok_and(|spec| credentials::secret_names(&spec).contains(&name))
        })
        .map(|group| ObjectRef::from_obj(group.as_ref()))
        .collect()
}

/// Waits until `store` has completed its first list (at most `limit`); false when it never
/// will (its writer is gone) or the limit passed. kube-runtime's readiness signal wakes only
/// its most recent waiter, so it is polled rather than awaited once.
pub async fn listed<K: kube::Resource + Clone>(store: &Store<K>, limit: Option<Duration>) -> bool
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
    loop {
        match tokio::time::timeout(READY_POLL, store.wait_until_ready()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => return false,
            Err(_) => continue,
        }
    }
}

/// A watch (or its list) the API server refuses with 403 makes `/readyz` fail with the reason;
/// kube-runtime retries it with backoff, and the next reconcile shows it works again.
pub(super) fn note_watch<T>(
    readiness: &Readiness,
    result: &Result<T, kube::runtime::controller::Error<Error, watcher::Error>>,
) {
    use kube::runtime::controller::Error as ControllerError;
    let refused = match result {
        Ok(_) => {
            readiness.clear_problem(operations::WATCH);
            return;
        }
        Err(ControllerError::QueueError(
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            | watcher::Error::WatchFailed(kube::Error::Api(status)),
        )) => Some(status.as_ref()),
        Err(ControllerError::QueueError(watcher::Error::WatchError(status))) => {
            Some(status.as_ref())
        }
        Err(_) => None,
    };
    if let Some(status) = refused.filter(|s| s.code == 403) {
        error!(reason = %status.message, "the API server refuses to let the operator watch; /readyz fails until it is allowed");
        readiness.report_problem(operations::WATCH, status.message.clone());
    }
}
