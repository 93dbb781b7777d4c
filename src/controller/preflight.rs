//! Checks at start-up that the operator can do its work, so that a configuration error fails
//! loudly at once — a `--selector` the API server refuses, the CRD not installed, a permission
//! the ServiceAccount lacks — instead of a silent loop of retried watches behind a ready probe.
//!
//! Every check is one request without side effects, made with the operator's own client:
//! - a list of ChatGroups (limit 1, with `--selector`) in each watched scope: the selector, the
//!   CRD and the `list` permission;
//! - a list of Secrets (limit 1) in each watched scope: `list` on Secrets;
//! - a get of a Secret that does not exist: `get` on Secrets (a 404 is the good answer);
//! - a dry-run patch of the status of a ChatGroup that does not exist: `patch` on
//!   `chatgroups/status` (authorization comes before the lookup, so 404 is the good answer);
//! - a dry-run create of an Event: `create` on `events.k8s.io` Events.
//!
//! `watch` cannot be checked without waiting; a watch refused later makes `/readyz` fail with
//! the reason (see the controller's stream handling). Lease permissions are checked by leader
//! election itself.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;

use super::{Scope, chatgroup_resource};
use crate::crd::{API_GROUP, API_VERSION, FIELD_MANAGER, KIND};

/// Bound on each check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// The name looked up by the checks that must not find anything.
pub const PROBE_NAME: &str = "cams-operator-preflight-probe";

/// Why the operator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused `--selector`.
    #[error(
        "the API server refuses the label selector --selector {selector:?}: {message}; fix the \
         flag (chart value `selector`)"
    )]
    InvalidSelector {
        /// The selector given.
        selector: String,
        /// The API server's message.
        message: String,
    },
    /// The ChatGroup CRD is not installed.
    #[error(
        "the ChatGroup CustomResourceDefinition (chatgroups.{API_GROUP}) is not installed: \
         install it (`kubectl apply -f crds/`, or the chart with crds.install=true)"
    )]
    CrdMissing,
    /// The ServiceAccount lacks permissions the operator needs.
    #[error(
        "the operator's ServiceAccount lacks permissions it needs (check the chart's RBAC and \
         that watchNamespaces matches --namespace): {}",
        .0.join("; ")
    )]
    Forbidden(Vec<String>),
    /// The API server could not be asked.
    #[error("cannot check the operator's access to the Kubernetes API ({what}): {message}")]
    Unavailable {
        /// The check.
        what: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// Bounded category for logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidSelector { .. } => "invalid_selector",
            Error::CrdMissing => "crd_missing",
            Error::Forbidden(_) => "forbidden",
            Error::Unavailable { .. } => "unavailable",
        }
    }
}

/// What one check found.
enum Found {
    /// Allowed (and, for lists, the selector and the CRD are fine).
    Fine,
    /// 403: the message names what was refused.
    Forbidden(String),
    /// 400 on a list with a selector.
    BadRequest(String),
    /// 404 on a list: the resource is not served.
    NotServed,
}

fn classify<T>(
    what: &str,
    result: Result<Result<T, kube::Error>, tokio::time::error::Elapsed>,
) -> Result<Found, Error> {
    match result {
        Err(_) => Err(Error::Unavailable {
            what: what.to_owned(),
            message: format!("no answer within {CHECK_TIMEOUT:?}"),
        }),
        Ok(Ok(_)) => Ok(Found::Fine),
        Ok(Err(kube::Error::Api(status))) => match status.code {
            403 => Ok(Found::Forbidden(status.message)),
            400 => Ok(Found::BadRequest(status.message)),
            404 => Ok(Found::NotServed),
            // Validation failures of the dry-run create come after authorization.
            409 | 422 => Ok(Found::Fine),
            _ => Err(Error::Unavailable {
                what: what.to_owned(),
                message: status.message,
            }),
        },
        Ok(Err(err)) => Err(Error::Unavailable {
            what: what.to_owned(),
            message: err.to_string(),
        }),
    }
}

/// Runs every check for `scope`; `home` is the namespace the namespaced checks use when the
/// operator watches every namespace. All missing permissions are reported together.
pub async fn check(client: &Client, scope: &Scope, home: &str) -> Result<(), Error> {
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut forbidden = Vec::new();
    for namespace in &namespaces {
        let in_ns = namespace.as_deref();
        let where_ = in_ns.map_or("in all namespaces".to_owned(), |ns| {
            format!("in namespace {ns}")
        });

        let groups: Api<DynamicObject> = match in_ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &chatgroup_resource()),
            None => Api::all_with(client.clone(), &chatgroup_resource()),
        };
        let mut params = ListParams::default().limit(1);
        if let Some(selector) = &scope.selector {
            params = params.labels(selector);
        }
        let what = format!("list ChatGroups {where_}");
        match classify(
            &what,
            tokio::time::timeout(CHECK_TIMEOUT, groups.list_metadata(&params)).await,
        )? {
            Found::Fine => {}
            Found::Forbidden(message) => forbidden.push(message),
            Found::BadRequest(message) => {
                return Err(Error::InvalidSelector {
                    selector: scope.selector.clone().unwrap_or_default(),
                    message,
                });
            }
            Found::NotServed => return Err(Error::CrdMissing),
        }

        let secrets: Api<Secret> = match in_ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let what = format!("list Secrets {where_}");
        if let Found::Forbidden(message) = classify(
            &what,
            tokio::time::timeout(
                CHECK_TIMEOUT,
                secrets.list_metadata(&ListParams::default().limit(1)),
            )
            .await,
        )? {
            forbidden.push(message);
        }

        let ns = in_ns.unwrap_or(home);
        forbidden.extend(namespaced_checks(client, ns).await?);
    }
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(Error::Forbidden(forbidden))
    }
}

/// The checks of one namespace: get a Secret, patch a ChatGroup's status, create an Event.
async fn namespaced_checks(client: &Client, ns: &str) -> Result<Vec<String>, Error> {
    let mut forbidden = Vec::new();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let what = format!("get a Secret in namespace {ns}");
    if let Found::Forbidden(message) = classify(
        &what,
        tokio::time::timeout(CHECK_TIMEOUT, secrets.get(PROBE_NAME)).await,
    )? {
        forbidden.push(message);
    }

    let groups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &chatgroup_resource());
    let body = serde_json::json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": {},
    });
    let params = PatchParams::apply(FIELD_MANAGER).dry_run();
    let what = format!("patch a ChatGroup's status in namespace {ns}");
    if let Found::Forbidden(message) = classify(
        &what,
        tokio::time::timeout(
            CHECK_TIMEOUT,
            groups.patch_status(PROBE_NAME, &params, &Patch::Apply(&body)),
        )
        .await,
    )? {
        forbidden.push(message);
    }

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let event = Event {
        metadata: ObjectMeta {
            name: Some(PROBE_NAME.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(jiff::Timestamp::now())),
        action: Some("Preflight".to_owned()),
        reason: Some("Preflight".to_owned()),
        type_: Some("Normal".to_owned()),
        reporting_controller: Some(FIELD_MANAGER.to_owned()),
        reporting_instance: Some(FIELD_MANAGER.to_owned()),
        regarding: Some(ObjectReference {
            namespace: Some(ns.to_owned()),
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    let what = format!("create an Event in namespace {ns}");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    if let Found::Forbidden(message) = classify(
        &what,
        tokio::time::timeout(CHECK_TIMEOUT, events.create(&params, &event)).await,
    )? {
        forbidden.push(message);
    }
    Ok(forbidden)
}
