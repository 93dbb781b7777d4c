//! Kubernetes Events (`events.k8s.io/v1`), one per CAMS write and one per change of failure
//! class. Each occurrence is its own Event (no series aggregation), so every write's RequestId
//! stays visible in `kubectl events`. Publishing is best effort: a failed Event is logged and
//! never fails the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::{Client, Resource, ResourceExt};
use tracing::warn;

use crate::crd::{API_GROUP, API_VERSION, FIELD_MANAGER, KIND};
use crate::reconcile::engine::{EventSpec, EventType};

/// Longest Event note accepted by the API server.
pub const MAX_NOTE_BYTES: usize = 1024;

/// Builds the Event for `spec` about `object`.
pub fn build(
    object: &DynamicObject,
    instance: &str,
    spec: &EventSpec,
    now: jiff::Timestamp,
) -> Event {
    let name = object.name_any();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: object.namespace(),
            ..ObjectMeta::default()
        },
        action: Some(spec.action.to_owned()),
        reason: Some(spec.reason.as_str().to_owned()),
        note: Some(truncate(&spec.note, MAX_NOTE_BYTES)),
        type_: Some(
            match spec.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(FIELD_MANAGER.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        regarding: Some(ObjectReference {
            api_version: Some(format!("{API_GROUP}/{API_VERSION}")),
            kind: Some(KIND.to_owned()),
            name: Some(name),
            namespace: object.namespace(),
            uid: object.meta().uid.clone(),
            resource_version: object.resource_version(),
            field_path: None,
        }),
        ..Event::default()
    }
}

/// Creates the Event; failures are logged only.
pub async fn publish(client: &Client, object: &DynamicObject, instance: &str, spec: &EventSpec) {
    let Some(namespace) = object.namespace() else {
        return;
    };
    let event = build(object, instance, spec, jiff::Timestamp::now());
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let created = tokio::time::timeout(
        super::KUBE_CALL_TIMEOUT,
        api.create(&PostParams::default(), &event),
    )
    .await;
    match created {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => warn!(error = %err, reason = %spec.reason, "could not publish an Event"),
        Err(_) => warn!(reason = %spec.reason, "publishing an Event timed out"),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_respects_char_boundaries() {
        let text = "é".repeat(600);
        let cut = truncate(&text, 1023);
        assert_eq!(cut.len(), 1022);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short", 1024), "short");
    }
}
