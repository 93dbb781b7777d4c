//! Starting a simulator: [`Simulator::builder`], and the [`RunningSim`] it gives.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AccessKeySeed, SimConfig, StsConfig};
use crate::error::SimError;
use crate::faults::{ActionFaults, ForcedError};
use crate::group::Group;
use crate::handle::SimHandle;
use crate::server;
use crate::state::{Clock, State};

/// Entry point: [`Simulator::builder`].
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// A builder listening on `127.0.0.1:0` (a free port) with no keys, no groups, no faults,
    /// seed 0 and the system clock.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            config: SimConfig::default(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Clock::default(),
        }
    }
}

/// Configures and starts a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    config: SimConfig,
    addr: SocketAddr,
    clock: Clock,
}

impl SimulatorBuilder {
    /// Replaces the whole configuration (e.g. one read with [`SimConfig::from_file`]); later
    /// builder calls add to it.
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }
    /// The listen address (default `127.0.0.1:0`).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }
    /// Accepts a permanent access key.
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.config.access_keys.push(AccessKeySeed::new(id, secret));
        self
    }
    /// Accepts an STS key: requests must carry `token`.
    pub fn sts_key(
        mut self,
        id: impl Into<String>,
        secret: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        self.config
            .access_keys
            .push(AccessKeySeed::sts(id, secret, token));
        self
    }
    /// Accepts any configured key (e.g. an STS key with an expiry).
    pub fn key(mut self, key: AccessKeySeed) -> Self {
        self.config.access_keys.push(key);
        self
    }
    /// Seeds a group.
    pub fn group(mut self, group: Group) -> Self {
        self.config.groups.push(group);
        self
    }
    /// Sets the faults of `action`.
    pub fn faults(mut self, action: impl Into<String>, faults: ActionFaults) -> Self {
        self.config.faults.insert(action.into(), faults);
        self
    }
    /// Answers every call naming `group_id` with business error `code` (HTTP 200).
    pub fn force_code(self, group_id: impl Into<String>, code: impl Into<String>) -> Self {
        self.force_error(group_id, ForcedError::business(code))
    }
    /// Answers every call naming `group_id` with `error`.
    pub fn force_error(mut self, group_id: impl Into<String>, error: ForcedError) -> Self {
        self.config.forced_codes.insert(group_id.into(), error);
        self
    }
    /// Seed of every random choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }
    /// Freezes the simulator's clock at `at` (e.g. a test vector's 2016 timestamp).
    pub fn fixed_time(mut self, at: Timestamp) -> Self {
        self.clock = Clock::Fixed(at);
        self
    }
    /// Runs the simulator's clock `offset` ahead of (or, negative, behind) the system clock.
    pub fn clock_offset(mut self, offset: SignedDuration) -> Self {
        self.clock = Clock::System { offset };
        self
    }
    /// How long a group created by `AddChatGroup` is listed `CREATING` before it turns
    /// `ACTIVE`, by the simulator's clock, in whole milliseconds (default zero: `ACTIVE` at
    /// once). With [`SimulatorBuilder::fixed_time`] a test moves the clock past it with
    /// [`SimHandle::set_time`].
    pub fn creation_delay(mut self, delay: std::time::Duration) -> Self {
        self.config.creation_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }
    /// Most entries kept in the request log.
    pub fn log_capacity(mut self, capacity: usize) -> Self {
        self.config.log_capacity = capacity;
        self
    }
    /// Replaces the simulated STS's settings.
    pub fn sts(mut self, sts: StsConfig) -> Self {
        self.config.sts = sts;
        self
    }
    /// STS accepts `AssumeRoleWithOIDC` only for this `RoleArn`.
    pub fn sts_role_arn(mut self, arn: impl Into<String>) -> Self {
        self.config.sts.role_arn = Some(arn.into());
        self
    }
    /// STS accepts `AssumeRoleWithOIDC` only for this `OIDCProviderArn`.
    pub fn sts_oidc_provider_arn(mut self, arn: impl Into<String>) -> Self {
        self.config.sts.oidc_provider_arn = Some(arn.into());
        self
    }
    /// STS accepts this OIDC token (from the first call on, only the tokens given this way;
    /// without any, every non-empty token).
    pub fn accept_oidc_token(mut self, token: impl Into<String>) -> Self {
        self.config.sts.accept_oidc_token(token);
        self
    }
    /// STS answers this OIDC token with `AuthenticationFail.OIDCToken.Expired`.
    pub fn expired_oidc_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.config.sts.expire_oidc_token(&token);
        self
    }
    /// Test override: credentials issued by STS live `ttl` (whole seconds, at least 1),
    /// whatever `DurationSeconds` asked for.
    pub fn sts_credential_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.config.sts.credential_ttl_seconds = Some(ttl.as_secs());
        self
    }

    /// Validates the configuration, binds the address and starts serving on the current tokio
    /// runtime.
    pub async fn start(self) -> Result<RunningSim, SimError> {
        self.config
            .validate()
            .map_err(|detail| SimError::InvalidConfig { detail })?;
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: self.addr,
            source,
        })?;
        let handle = SimHandle {
            state: Arc::new(Mutex::new(State::new(self.config, self.clock))),
        };
        let (shutdown, receiver) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, handle.clone(), receiver));
        Ok(RunningSim {
            addr,
            handle,
            shutdown,
            task: Some(task),
        })
    }
}

/// A simulator serving on a local port. Dereferences to its [`SimHandle`]; dropping it stops
/// the server (use [`RunningSim::shutdown`] to also wait for it).
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    handle: SimHandle,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://HOST:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
    /// A cloneable handle to inspect and steer the simulator.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }
    /// Stops accepting connections, lets open ones finish (briefly) and waits for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Deref for RunningSim {
    type Target = SimHandle;
    fn deref(&self) -> &SimHandle {
        &self.handle
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
