//! The reconcile of one object, as kube-rs calls it: read the object's Secrets, bring its
//! status up to date with the controller's [`memory`](super::memory), run the pure reconcile
//! core ([`crate::reconcile::engine`]), then write the status and Events
//! ([`status_write`](super::status_write)); and the error policy for the controller's own
//! Kubernetes failures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, debug, info_span, warn};

use crate::cams::{CamsApi, Credentials};
use crate::crd::{CREATE_AGAIN_ANNOTATION, ChatGroup, ChatGroupStatus, DEFAULT_SECRET_NAME};
use crate::metrics::ErrorLabels;
use crate::reconcile::credentials::{self, CredentialsError, Decision, OperatorFallback};
use crate::reconcile::engine::{self, Input, Requeue};
use crate::reconcile::lifecycle::{finalizer_wanted, has_finalizer};

use super::cached::CachedChatGroup;
use super::lifecycle::{StatusMarks, StorePeers, set_finalizer};
use super::memory::{InputFingerprint, OwnWrite, Reconciled, memory_key};
use super::secrets::{SecretsByName, read_secrets};
use super::status_write::{finish, patch_status};
use super::{Context, Error};

/// Requeue delay after a failure of the operator's own Kubernetes API calls.
pub const KUBE_ERROR_REQUEUE: Duration = Duration::from_secs(10);

/// The reconcile kube-rs runs: [`reconcile_object`], timed into the reconcile metrics, its
/// requeue delay converted from the clock's time to real time.
pub(super) async fn reconcile_entry<C: CamsApi + 'static>(
    object: Arc<CachedChatGroup>,
    ctx: Arc<Context<C>>,
) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let span = info_span!("reconcile", object = %key);
    let started = tokio::time::Instant::now();
    let (result, waits) =
        crate::metrics::measure_waits(reconcile_object(object, &ctx).instrument(span)).await;
    let elapsed = started.elapsed();
    let overhead = elapsed.saturating_sub(waits.cams);
    ctx.metrics
        .reconcile_duration
        .observe(elapsed.as_secs_f64());
    ctx.metrics
        .reconcile_overhead
        .observe(overhead.as_secs_f64());
    ctx.metrics
        .reconcile_self
        .observe(overhead.saturating_sub(waits.kube).as_secs_f64());
    result.map(|requeue| match requeue {
        Requeue::After(delay) => Action::requeue(ctx.clock.to_real(delay)),
        Requeue::AwaitChange => Action::await_change(),
    })
}

/// One reconcile of one object: read its Secrets, run the reconcile core, write the status
/// (only when more than timestamps changed) and the Events. Returns when to reconcile again.
pub async fn reconcile_object<C: CamsApi>(
    object: Arc<CachedChatGroup>,
    ctx: &Context<C>,
) -> Result<Requeue, Error> {
    let namespace = object.namespace().ok_or(Error::MissingKey)?;
    let name = object.meta().name.clone().ok_or(Error::MissingKey)?;
    let key = memory_key(&object);
    let now = ctx.clock.now();

    let read_version = object.resource_version();
    let stored_status = object.status();
    if let Some(problem) = &stored_status.problem {
        warn!(%problem, "the status does not parse; reconciling as if there were none");
    }
    let mut chatgroup = match object.with_status(stored_status.status.clone()) {
        Ok(cg) => cg,
        Err(problem) => {
            let old = stored_status.status;
            let outcome =
                engine::unparseable(object.meta().generation, old.as_ref(), &problem, now);
            let baseline = (old.as_ref(), old.as_ref());
            finish(ctx, &object, &namespace, &name, baseline, &outcome).await?;
            return Ok(outcome.requeue);
        }
    };

    let (secrets, fingerprint) = read_inputs(ctx, &chatgroup, &namespace).await?;
    let uid = object.uid();
    let memory = ctx.memory.recall(&key, &uid);
    if chatgroup.metadata.deletion_timestamp.is_some() {
        if !has_finalizer(&chatgroup) {
            return Ok(Requeue::AwaitChange);
        }
        let stored = memory.catch_up(&mut chatgroup.status, &read_version);
        let resolved = resolve_credentials(ctx, &chatgroup, &namespace, &secrets).await;
        return finalize_object(ctx, &object, &chatgroup, resolved, stored, now).await;
    }
    let wanted = finalizer_wanted(&chatgroup.spec);
    if wanted != has_finalizer(&chatgroup) {
        crate::metrics::kube_call(set_finalizer(ctx, &namespace, &name, wanted)).await?;
    }
    // After a terminal failure nothing is retried until the generation, the pause annotation
    // or a Secret changes: a watch event such as our own status patch does not count.
    if memory.terminal.as_deref() == Some(&fingerprint) {
        debug!("inputs unchanged since a terminal failure; waiting for a change");
        return Ok(Requeue::AwaitChange);
    }

    let resolved = resolve_credentials(ctx, &chatgroup, &namespace, &secrets).await;
    // `stored` is the status the API server holds as far as we know (the baseline of the
    // next patch); `previous` is what the last reconcile concluded (the baseline of the
    // reconcile and of its Events). They differ while our last status patch is pending.
    let mut stored = memory.catch_up(&mut chatgroup.status, &read_version);
    let previous = chatgroup.status.clone();
    let mut superseded = OwnWrite::superseded_by_next(memory.own_write.as_deref(), &read_version);
    let mut marked = false;
    if needs_reconciling_mark(&chatgroup, resolved.is_ok()) {
        let mark = engine::reconciling_mark(previous.as_ref(), chatgroup.metadata.generation, now);
        let version =
            crate::metrics::kube_call(patch_status(ctx, &namespace, &name, &mark)).await?;
        superseded.push(version);
        stored = Some(mark);
        marked = true;
    }
    if let Some(status) = chatgroup.status.as_mut() {
        memory.apply_to(status, &fingerprint.secret_versions);
    }
    let peers = StorePeers::new(&ctx.peers, &object);
    let marks = StatusMarks::new(ctx, &namespace, &name);
    let input = Input {
        object: &chatgroup,
        credentials: resolved,
        endpoint_override: None,
        now,
        jitter: rand::random::<f64>(),
        peers: &peers,
        marks: &marks,
    };
    let outcome = engine::reconcile(input, &ctx.cams, &ctx.lister).await;
    if let Some((mark, version)) = marks.written() {
        // A creation's record was stored before AddChatGroup: it is what the API server holds.
        superseded.push(version);
        stored = Some(mark);
        marked = true;
    }

    // Remembered before the status is written: when the patch fails (the reconcile is then
    // retried), the next reconcile still knows what this one did — a CAMS write and its
    // RequestId are never lost, and never repeated.
    let must_write = engine::status_changed(stored.as_ref(), &outcome.status);
    let own_write = (must_write || marked)
        .then(|| OwnWrite::after(superseded, must_write, stored.as_ref(), &outcome.status));
    ctx.memory.remember(key.clone(), uid.clone(), |entry| {
        entry.record(Reconciled {
            own_write,
            read_version: &read_version,
            fingerprint: &fingerprint,
            status: &outcome.status,
            terminal: outcome.requeue == Requeue::AwaitChange,
        });
    });
    let version = finish(
        ctx,
        &object,
        &namespace,
        &name,
        (stored.as_ref(), previous.as_ref()),
        &outcome,
    )
    .await?;
    if must_write {
        ctx.memory.remember(key, uid, |entry| {
            if let Some(own) = entry.own_write.as_mut() {
                own.written = true;
                own.version = version;
            }
        });
    }
    Ok(outcome.requeue)
}

/// One reconcile of an object being deleted that carries the finalizer: deletes the group
/// when the spec says so, writes the status while the object stays, and removes the finalizer
/// once it may go.
async fn finalize_object<C: CamsApi>(
    ctx: &Context<C>,
    object: &CachedChatGroup,
    chatgroup: &ChatGroup,
    credentials: Result<Credentials, CredentialsError>,
    stored: Option<ChatGroupStatus>,
    now: jiff::Timestamp,
) -> Result<Requeue, Error> {
    let namespace = object.namespace().ok_or(Error::MissingKey)?;
    let name = object.meta().name.clone().ok_or(Error::MissingKey)?;
    let peers = StorePeers::new(&ctx.peers, object);
    let marks = StatusMarks::new(ctx, &namespace, &name);
    let input = Input {
        object: chatgroup,
        credentials,
        endpoint_override: None,
        now,
        jitter: rand::random::<f64>(),
        peers: &peers,
        marks: &marks,
    };
    let deletion = engine::finalize(input, &ctx.cams, &ctx.lister).await;
    let previous = chatgroup.status.clone();
    let stored = marks.written().map(|(mark, _)| mark).or(stored);
    finish(
        ctx,
        object,
        &namespace,
        &name,
        (stored.as_ref(), previous.as_ref()),
        &deletion.outcome,
    )
    .await?;
    if deletion.release {
        crate::metrics::kube_call(set_finalizer(ctx, &namespace, &name, false)).await?;
        return Ok(Requeue::AwaitChange);
    }
    Ok(deletion.outcome.requeue)
}

/// The object's Secrets and the inputs a terminal failure waits on. A paused object makes no
/// calls at all, not even Secret reads.
async fn read_inputs<C: CamsApi>(
    ctx: &Context<C>,
    chatgroup: &ChatGroup,
    namespace: &str,
) -> Result<(SecretsByName, InputFingerprint), Error> {
    let (secrets, secret_versions) = if chatgroup.is_paused() {
        (BTreeMap::new(), Vec::new())
    } else {
        let names = credentials::secret_names(&chatgroup.spec);
        crate::metrics::kube_call(read_secrets(ctx, namespace, &names)).await?
    };
    let fingerprint = InputFingerprint {
        generation: chatgroup.metadata.generation,
        paused: chatgroup.is_paused(),
        create_again: chatgroup
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CREATE_AGAIN_ANNOTATION).cloned()),
        secret_versions,
    };
    Ok((secrets, fingerprint))
}

/// Whether the operator is starting on a generation it has not reported on yet (a new object,
/// or a changed spec) and will call CAMS for it: then `Reconciling=True` is written first, so
/// kstatus readers see work in progress while the call waits for the CAMS budget. Objects that
/// end without a call (paused, an invalid spec, no credentials) get their final status at once
/// instead, with no extra patch.
fn needs_reconciling_mark(chatgroup: &ChatGroup, credentials_resolved: bool) -> bool {
    let observed = chatgroup
        .status
        .as_ref()
        .and_then(|s| s.observed_generation);
    observed != chatgroup.metadata.generation
        && !chatgroup.is_paused()
        && credentials_resolved
        && crate::reconcile::validate::validate(&chatgroup.spec).is_ok()
}

/// The object's credentials (Secret named in the spec, then `cams-credentials` in the
/// namespace, then the operator's own identity). The core decides; the operator's own identity is
/// consulted (and, with RRSA, refreshed) only when no Secret applies and the object's namespace
/// may use it.
async fn resolve_credentials<C>(
    ctx: &Context<C>,
    chatgroup: &ChatGroup,
    namespace: &str,
    secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> Result<Credentials, CredentialsError> {
    let fallback = OperatorFallback {
        configured: ctx.operator_identity.is_configured(),
        namespaces: &ctx.identity_namespaces,
    };
    let lookup = |name: &str| secrets.get(name).cloned();
    match credentials::decide(&chatgroup.spec, namespace, lookup, fallback)? {
        Decision::Secret(resolved) => Ok(resolved.credentials),
        Decision::Operator => ctx
            .operator_identity
            .current()
            .await
            .map_err(|err| CredentialsError::OperatorIdentity {
                detail: err.to_string(),
                retryable: err.is_retryable(),
                reason: err.reason(),
            })?
            .ok_or(CredentialsError::NoneFound {
                default_secret: DEFAULT_SECRET_NAME,
            }),
    }
}

/// What kube-rs does when a reconcile could not finish (a Kubernetes call of the operator's
/// own failed): count it, log it, and retry after [`KUBE_ERROR_REQUEUE`] with jitter.
pub(super) fn error_policy<C: CamsApi>(
    _object: Arc<CachedChatGroup>,
    error: &Error,
    ctx: Arc<Context<C>>,
) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            category: error.category(),
        })
        .inc();
    warn!(error = %error, "reconcile could not finish; retrying");
    let jitter = 1.0 + rand::random::<f64>() * 0.5;
    Action::requeue(KUBE_ERROR_REQUEUE.mul_f64(jitter))
}
