//! The controller's side of the group lifecycle: what the other ChatGroups claim (read from the
//! watch caches), storing a creation's record before `AddChatGroup` is called, and the
//! finalizer of `deletionPolicy: Delete`.

use std::sync::Mutex;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tracing::debug;

use crate::cams::{CamsApi, Endpoint, GroupKey};
use crate::crd::{
    API_GROUP, API_VERSION, ChatGroupSpec, ChatGroupStatus, CreationPolicy, DELETE_GROUP_FINALIZER,
    KIND,
};
use crate::reconcile::lifecycle::{MarkFuture, MarkWriter, Peers};
use crate::reconcile::validate::spec_endpoint;

use super::cached::CachedChatGroup;
use super::context::{KUBE_CALL_TIMEOUT, operations};
use super::status_write::{chatgroup_resource, patch_status};
use super::{Context, Error};

/// The field manager of the finalizer, apart from the status's: applying the finalizer alone
/// must not drop anything else the operator applied.
const FINALIZER_MANAGER: &str = "cams-operator-finalizer";

/// The watch caches of the running controllers (empty before they start).
pub(super) type PeerStores = std::sync::RwLock<Vec<Store<CachedChatGroup>>>;

/// What the other ChatGroups in the watch caches claim, as seen by one object. Building it
/// costs nothing: the caches are only read when a creation asks.
pub(super) struct StorePeers<'a> {
    stores: &'a PeerStores,
    /// The object asking: never its own peer.
    object: &'a CachedChatGroup,
}

impl<'a> StorePeers<'a> {
    pub(super) fn new(stores: &'a PeerStores, object: &'a CachedChatGroup) -> Self {
        StorePeers { stores, object }
    }

    /// Every other object, with its spec (objects whose spec does not parse are skipped).
    fn others(&self) -> Vec<(std::sync::Arc<CachedChatGroup>, ChatGroupSpec)> {
        let stores = self
            .stores
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let uid = self.object.uid();
        stores
            .iter()
            .flat_map(Store::state)
            .filter(|other| other.uid() != uid)
            .filter_map(|other| {
                let spec = other.spec().ok()?;
                Some((other, spec))
            })
            .collect()
    }
}

/// When the object was created, then its namespace and name: "earlier" is by this order.
fn age_order(object: &CachedChatGroup) -> (Option<jiff::Timestamp>, String, String) {
    (
        created_at(object),
        object.namespace().unwrap_or_default(),
        object.name_any(),
    )
}

fn created_at(object: &CachedChatGroup) -> Option<jiff::Timestamp> {
    object.meta().creation_timestamp.as_ref().map(|t| t.0)
}

fn same_space(spec: &ChatGroupSpec, endpoint: &Endpoint, key: &GroupKey) -> bool {
    spec.cust_space_id == key.cust_space_id
        && spec.business_number == key.business_number
        && spec_endpoint(spec) == *endpoint
}

impl Peers for StorePeers<'_> {
    fn claimed(&self, endpoint: &Endpoint, key: &GroupKey) -> bool {
        self.others().into_iter().any(|(other, spec)| {
            if !same_space(&spec, endpoint, key) {
                return false;
            }
            spec.group_id.as_deref() == Some(key.group_id.as_str())
                || other.status().status.and_then(|s| s.group_id).as_deref()
                    == Some(key.group_id.as_str())
        })
    }

    fn earlier_creator(
        &self,
        endpoint: &Endpoint,
        key: &GroupKey,
        subject: &str,
    ) -> Option<String> {
        let asking = age_order(self.object);
        self.others()
            .into_iter()
            .filter(|(_, spec)| {
                spec.creation_policy == CreationPolicy::Create
                    && spec.subject.as_deref() == Some(subject)
                    && same_space(spec, endpoint, key)
            })
            .map(|(other, _)| age_order(&other))
            .filter(|order| *order < asking)
            .min()
            .map(|(_, namespace, name)| {
                if namespace == asking.1 {
                    format!("ChatGroup {namespace}/{name}")
                } else {
                    // Another tenant's object is not named to this one.
                    "a ChatGroup in another namespace".to_owned()
                }
            })
    }
}

/// Stores a creation's record as the object's status, and remembers what it wrote.
pub(super) struct StatusMarks<'a, C> {
    ctx: &'a Context<C>,
    namespace: &'a str,
    name: &'a str,
    /// The record written and the resourceVersion the write produced.
    written: Mutex<Option<(ChatGroupStatus, Option<String>)>>,
}

impl<'a, C> StatusMarks<'a, C> {
    pub(super) fn new(ctx: &'a Context<C>, namespace: &'a str, name: &'a str) -> Self {
        StatusMarks {
            ctx,
            namespace,
            name,
            written: Mutex::new(None),
        }
    }

    /// The record written during the reconcile, if any, and its resourceVersion.
    pub(super) fn written(self) -> Option<(ChatGroupStatus, Option<String>)> {
        self.written
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<C: CamsApi> MarkWriter for StatusMarks<'_, C> {
    fn write_mark<'a>(&'a self, status: &'a ChatGroupStatus) -> MarkFuture<'a> {
        Box::pin(async move {
            let version = crate::metrics::kube_call(patch_status(
                self.ctx,
                self.namespace,
                self.name,
                status,
            ))
            .await
            .map_err(|err| err.to_string())?;
            *self
                .written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((status.clone(), version));
            Ok(())
        })
    }
}

/// Adds (`present`) or removes the finalizer, by server-side apply under a field manager of its
/// own: other finalizers, and everything else on the object, stay as they are.
pub(super) async fn set_finalizer<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
    present: bool,
) -> Result<(), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &chatgroup_resource());
    let finalizers: Vec<&str> = if present {
        vec![DELETE_GROUP_FINALIZER]
    } else {
        Vec::new()
    };
    let body = serde_json::json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "finalizers": finalizers},
    });
    let params = PatchParams::apply(FINALIZER_MANAGER);
    let result = tokio::time::timeout(
        KUBE_CALL_TIMEOUT,
        api.patch(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map_err(|_| Error::Timeout {
        operation: "writing the finalizer",
        timeout: KUBE_CALL_TIMEOUT,
    })?;
    ctx.note_access(operations::WRITE_FINALIZER, &result);
    result.map_err(|source| Error::PatchStatus {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    debug!(present, "finalizer written");
    Ok(())
}
