//! Writing what a reconcile concluded: the status, with one server-side apply patch to
//! `/status` under the `cams-operator` field manager and only when more than timestamps
//! changed; the Events (built and published by [`events`]); and the reconcile
//! metrics.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use tracing::{debug, warn};

use crate::cams::CamsApi;
use crate::crd::{API_GROUP, API_VERSION, ChatGroupStatus, FIELD_MANAGER, KIND, PLURAL};
use crate::metrics::{ErrorLabels, RESULT_FAILURE, RESULT_SUCCESS, ReconcileLabels};
use crate::reconcile::engine::{self, Outcome};

use super::cached::CachedChatGroup;
use super::{Context, Error, KUBE_CALL_TIMEOUT, events, operations};

/// Writes the status (when more than timestamps changed), publishes Events, records metrics;
/// returns the resourceVersion the status patch gave the object, if one was made.
/// `old` is the status stored in the API (what a patch must change) and the status the
/// previous reconcile concluded (what Events compare with); usually the same.
pub(super) async fn finish<C: CamsApi>(
    ctx: &Context<C>,
    object: &CachedChatGroup,
    namespace: &str,
    name: &str,
    old: (Option<&ChatGroupStatus>, Option<&ChatGroupStatus>),
    outcome: &Outcome,
) -> Result<Option<String>, Error> {
    let (stored, previous) = old;
    let result = if outcome.failure.is_some() {
        RESULT_FAILURE
    } else {
        RESULT_SUCCESS
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels { result })
        .inc();
    if let Some(failure) = &outcome.failure {
        ctx.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabels {
                category: failure.category,
            })
            .inc();
        warn!(reason = %failure.reason, detail = %failure.message, "reconcile failed");
    }
    if outcome.drift_found {
        ctx.metrics.drift_detected.inc();
    }
    let patched = if engine::status_changed(stored, &outcome.status) {
        crate::metrics::kube_call(patch_status(ctx, namespace, name, &outcome.status)).await
    } else {
        Ok(None)
    };
    // Events are published even when the status patch failed: they report what happened
    // in CAMS, and the next reconcile will not report it again.
    for event in engine::events(previous, outcome) {
        crate::metrics::kube_call(events::publish(ctx, &object.metadata(), &event)).await;
    }
    patched
}

/// Writes `status` with one server-side apply patch to `/status`; returns the object's new
/// resourceVersion.
pub(super) async fn patch_status<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
    status: &ChatGroupStatus,
) -> Result<Option<String>, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &chatgroup_resource());
    let body = serde_json::json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let result = tokio::time::timeout(
        KUBE_CALL_TIMEOUT,
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map_err(|_| Error::Timeout {
        operation: "writing the status",
        timeout: KUBE_CALL_TIMEOUT,
    })?;
    ctx.note_access(operations::WRITE_STATUS, &result);
    let patched = result.map_err(|source| Error::PatchStatus {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    ctx.metrics.status_patches.inc();
    debug!("status written");
    Ok(patched.resource_version())
}

/// The ApiResource of ChatGroup, for untyped requests (start-up checks, status patches).
pub fn chatgroup_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(API_GROUP, API_VERSION, KIND), PLURAL)
}
