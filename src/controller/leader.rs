//! Leader election on a `coordination.k8s.io/v1` Lease, so a standby replica can take over.
//!
//! The holder renews the Lease every `renew_interval`; a candidate takes it over once
//! `renewTime + leaseDurationSeconds` has passed. A leader that cannot renew within
//! `renew_deadline` (shorter than the lease duration) stops reconciling before anyone else may
//! start, so two replicas never write at once. On a graceful shutdown the leader releases the
//! Lease so the standby takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tracing::{debug, info, warn};

/// Default lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// Leader-election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and how often a candidate retries.
    pub renew_interval: Duration,
    /// A holder that could not renew for this long stops leading (less than `lease_duration`).
    pub renew_deadline: Duration,
}

impl LeaderConfig {
    /// Settings derived from one lease duration: renew every third, give up after two thirds.
    pub fn new(
        lease_name: String,
        namespace: String,
        identity: String,
        lease_duration: Duration,
    ) -> Self {
        LeaderConfig {
            lease_name,
            namespace,
            identity,
            lease_duration,
            renew_interval: lease_duration / 3,
            renew_deadline: lease_duration * 2 / 3,
        }
    }
}

/// Failures of leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another replica holds the Lease now.
    #[error("leadership of Lease {namespace}/{name} was lost to {holder}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Current holder.
        holder: String,
    },
    /// The Lease could not be renewed before the deadline.
    #[error("Lease {namespace}/{name} could not be renewed within {deadline:?}: {last_error}")]
    RenewDeadline {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The deadline.
        deadline: Duration,
        /// The last failure.
        last_error: String,
    },
}

/// Result of one attempt to take or renew the Lease.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Leading,
    HeldBy(String),
}

/// Takes and keeps a Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
}

impl LeaderElector {
    /// An elector for `config`.
    pub fn new(client: Client, config: LeaderConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    info!(lease = %self.config.lease_name, "became the leader");
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => debug!(%holder, "standing by; the Lease is held"),
                Err(err) => warn!(error = %err, "leader election attempt failed"),
            }
            tokio::time::sleep(self.config.renew_interval).await;
        }
    }

    /// Renews the Lease until leadership is lost; returns why.
    pub async fn hold(&self) -> Error {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_interval).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::HeldBy(holder)) => {
                    return Error::Lost {
                        namespace: self.config.namespace.clone(),
                        name: self.config.lease_name.clone(),
                        holder,
                    };
                }
                Err(err) => {
                    if last_renewal.elapsed() >= self.config.renew_deadline {
                        return Error::RenewDeadline {
                            namespace: self.config.namespace.clone(),
                            name: self.config.lease_name.clone(),
                            deadline: self.config.renew_deadline,
                            last_error: err.to_string(),
                        };
                    }
                    warn!(error = %err, "renewing the Lease failed; retrying");
                }
            }
        }
    }

    /// Gives the Lease up (on graceful shutdown) so a standby can take over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lease_name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!("released the Lease"),
            Err(err) => warn!(error = %err, "could not release the Lease"),
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = jiff::Timestamp::now();
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::HeldBy("another replica".to_owned()))
                }
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.config.identity;
        if !mine && !holder.is_empty() && !expired(spec, now, self.config.lease_duration) {
            return Ok(Attempt::HeldBy(holder));
        }
        if !mine {
            spec.holder_identity = Some(self.config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(duration_secs);
        // `replace` carries the resourceVersion read above: a concurrent writer makes it 409.
        match self
            .api
            .replace(&lease.name_any(), &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Attempt::HeldBy("another replica".to_owned()))
            }
            Err(err) => Err(err),
        }
    }
}

/// Whether a Lease has not been renewed within its duration.
fn expired(spec: &LeaseSpec, now: jiff::Timestamp, default_duration: Duration) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time else {
        return true;
    };
    let duration = spec
        .lease_duration_seconds
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
        .unwrap_or(default_duration);
    let Ok(duration) = jiff::SignedDuration::try_from(duration) else {
        return true;
    };
    renewed
        .checked_add(duration)
        .is_ok_and(|deadline| deadline < now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = jiff::Timestamp::now();
        LeaseSpec {
            holder_identity: Some("other".into()),
            renew_time: Some(MicroTime(
                now.checked_sub(jiff::SignedDuration::from_secs(renewed_secs_ago))
                    .unwrap_or(now),
            )),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_fresh_lease_is_not_expired_and_a_stale_one_is() {
        let now = jiff::Timestamp::now();
        assert!(!expired(&spec(5, 15), now, DEFAULT_LEASE_DURATION));
        assert!(expired(&spec(20, 15), now, DEFAULT_LEASE_DURATION));
        assert!(expired(&LeaseSpec::default(), now, DEFAULT_LEASE_DURATION));
    }

    #[test]
    fn renew_deadline_is_shorter_than_the_lease() {
        let config = LeaderConfig::new(
            "l".into(),
            "ns".into(),
            "me".into(),
            Duration::from_secs(15),
        );
        assert!(config.renew_deadline < config.lease_duration);
        assert!(config.renew_interval < config.renew_deadline);
    }
}
