//! Kubernetes Events (`events.k8s.io/v1`), one per CAMS write and one per change of failure
//! class. Each occurrence is its own Event (no series aggregation), so every write's RequestId
//! stays visible in `kubectl events`. Publishing is best effort: a failed Event is logged and
//! never fails the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tracing::warn;

use crate::crd::{API_GROUP, API_VERSION, FIELD_MANAGER, KIND};
use crate::reconcile::engine::{EventSpec, EventType};

use super::Context;

/// Longest Event note accepted by the API server.
pub const MAX_NOTE_BYTES: usize = 1024;

/// Longest name of an Event (a DNS subdomain).
pub const MAX_NAME_BYTES: usize = 253;

/// The name of an Event about the object `object_name` at `now`: the object's name and the
/// time in hexadecimal nanoseconds (`support-team.18a2b3c4d5e6f708`). Object names may use
/// the whole 253 characters a name allows, so the object's part is shortened to leave room
/// for the suffix, and ends with a letter or digit as a DNS subdomain must.
pub fn event_name(object_name: &str, now: jiff::Timestamp) -> String {
    let suffix = format!(".{:x}", now.as_nanosecond());
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len());
    let mut end = object_name.len().min(room);
    while !object_name.is_char_boundary(end) {
        end -= 1;
    }
    let base = object_name[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let base = if base.is_empty() { "chatgroup" } else { base };
    format!("{base}{suffix}")
}

/// Builds the Event for `spec` about `object`.
pub fn build(object: &ObjectMeta, instance: &str, spec: &EventSpec, now: jiff::Timestamp) -> Event {
    let name = object.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&name, now)),
            namespace: object.namespace.clone(),
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
            namespace: object.namespace.clone(),
            uid: object.uid.clone(),
            resource_version: object.resource_version.clone(),
            field_path: None,
        }),
        ..Event::default()
    }
}

/// Creates the Event. A failure does not fail the reconcile (the status says the same): it is
/// logged and counted in `cams_operator_events_failed_total`; a refused permission also makes
/// `/readyz` fail with the reason.
pub async fn publish<C>(ctx: &Context<C>, object: &ObjectMeta, spec: &EventSpec) {
    let Some(namespace) = object.namespace.clone() else {
        return;
    };
    let event = build(object, &ctx.instance, spec, jiff::Timestamp::now());
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let created = tokio::time::timeout(
        super::KUBE_CALL_TIMEOUT,
        api.create(&PostParams::default(), &event),
    )
    .await;
    match created {
        Ok(result) => {
            ctx.note_access(super::operations::CREATE_EVENTS, &result);
            match result {
                Ok(_) => return,
                Err(err) => {
                    warn!(error = %err, reason = %spec.reason, "could not publish an Event")
                }
            }
        }
        Err(_) => warn!(reason = %spec.reason, "publishing an Event timed out"),
    }
    ctx.metrics.events_failed.inc();
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
    use super::{MAX_NAME_BYTES, event_name, truncate};

    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= MAX_NAME_BYTES
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn event_names_are_valid_for_every_object_name() {
        let now = jiff::Timestamp::now();
        let longest = "a".repeat(253);
        let dotted = format!("{}.b", "a".repeat(240));
        let dashed = format!("{}-{}", "a".repeat(235), "b".repeat(17));
        for object in [
            "support-team",
            longest.as_str(),
            dotted.as_str(),
            dashed.as_str(),
        ] {
            let name = event_name(object, now);
            assert!(is_dns_subdomain(&name), "{name} ({} bytes)", name.len());
            assert!(name.starts_with(&object[..object.len().min(200)]));
        }
        // `dashed` is cut right after its `-`, which is trimmed back to a letter.
        assert!(event_name(&dashed, now).starts_with(&format!("{}.", "a".repeat(235))));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let text = "é".repeat(600);
        let cut = truncate(&text, 1023);
        assert_eq!(cut.len(), 1022);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short", 1024), "short");
    }
}
