//! The CAMS simulator: a local stand-in for Alibaba Cloud's CAMS API that every test, the demo
//! and the benchmarks run against.
//!
//! It speaks the RPC protocol (`GET`/`POST /`, parameters in the query and/or a form body, a JSON
//! envelope, gateway errors as HTTP 4xx/5xx, business errors as HTTP 200 with `Code != "OK"`),
//! verifies V1 and V3 signatures with its own code ([`verify`]), and serves `AddChatGroup`,
//! `UpdateChatGroup`, `ListChatGroup` and `DeleteChatGroup` on groups held in memory, plus STS
//! `AssumeRoleWithOIDC` ([`sts`]) for the operator's RRSA identity. Faults
//! (throttling, server errors, latency, dropped connections, forced codes) are injected per
//! action, deterministically from a seed ([`faults`]). Every call is counted and logged without
//! secrets.
//!
//! In-process use (tests):
//!
//! ```no_run
//! # async fn example() -> Result<(), cams_operator::sim::SimError> {
//! use cams_operator::sim::{ActionFaults, Group, Simulator};
//!
//! let sim = Simulator::builder()
//!     .access_key("testid", "testsecret")
//!     .group(Group::new("cams-test", "8613800001234", "EA303TEST").subject("Team chat"))
//!     .faults("UpdateChatGroup", ActionFaults::none().throttle_rate(0.5))
//!     .seed(42)
//!     .start()
//!     .await?;
//! let endpoint = sim.endpoint(); // http://127.0.0.1:PORT/
//! // ... call it ...
//! assert_eq!(sim.call_count("UpdateChatGroup"), 0);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! As a process: `cams-operator sim --addr 127.0.0.1:8787 --config sim.yaml`, with admin
//! endpoints under `/_sim/` (see the README).

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod api;
pub mod config;
pub mod faults;
mod server;
mod state;
pub mod sts;
pub mod verify;

pub use api::{ACTION_ADD_CHAT_GROUP, ACTION_DELETE_CHAT_GROUP, MAX_PAGE_SIZE};
pub use config::{AccessKeySeed, DEFAULT_LOG_CAPACITY, SimConfig};
pub use faults::{ActionFaults, Fault, ForcedError, ServerError};
pub use server::{ADMIN_PREFIX, RATELIMIT_HEADER};
pub use state::{ActionStats, Clock, GROUP_STATUS_ACTIVE, Group, GroupEdit, LoggedRequest, Stats};
pub use sts::{ACTION_ASSUME_ROLE_WITH_OIDC, STS_API_VERSION, StsConfig};
pub use verify::SignatureVersion;

use crate::cams::Endpoint;
use state::State;

/// The `Code` values the simulator answers with (besides `OK`, [`crate::cams::CODE_OK`], and a
/// missing group, [`crate::cams::CODE_GROUP_NOT_FOUND`]). HTTP statuses are those of the real
/// gateway.
pub mod codes {
    /// `OK`.
    pub const OK: &str = crate::cams::CODE_OK;
    /// HTTP 400: a required parameter is absent or empty.
    pub const MISSING_PARAMETER: &str = "MissingParameter";
    /// HTTP 400 (gateway: unreadable request, repeated parameter) or 200 (business: a field
    /// over its limit, an empty optional field).
    pub const INVALID_PARAMETER: &str = "InvalidParameter";
    /// HTTP 400: `Signature` (V1) or the `Authorization` header (V3) is absent or malformed, or
    /// a header that must be signed is not.
    pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignature";
    /// HTTP 400: the signature is not the one computed with the key's secret.
    pub const SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";
    /// HTTP 404: the AccessKey ID is not configured.
    pub const INVALID_ACCESS_KEY_ID_NOT_FOUND: &str = "InvalidAccessKeyId.NotFound";
    /// HTTP 400: `Timestamp` / `x-acs-date` is more than 15 minutes from the simulator's clock.
    pub const INVALID_TIMESTAMP_EXPIRED: &str = "InvalidTimeStamp.Expired";
    /// HTTP 400: `Timestamp` / `x-acs-date` is not an ISO 8601 UTC time.
    pub const INVALID_TIMESTAMP_FORMAT: &str = "InvalidTimeStamp.Format";
    /// HTTP 400: the nonce was used in the last 30 minutes by the same AccessKey.
    pub const SIGNATURE_NONCE_USED: &str = "SignatureNonceUsed";
    /// HTTP 400: an STS key without its token, with another token, or a token with a
    /// permanent key.
    pub const INVALID_SECURITY_TOKEN_MISMATCH: &str = "InvalidSecurityToken.Mismatch";
    /// HTTP 400: the STS token's configured expiry has passed.
    pub const INVALID_SECURITY_TOKEN_EXPIRED: &str = "InvalidSecurityToken.Expired";
    /// HTTP 400, with `x-ratelimit-user-api`: throttled.
    pub const THROTTLING_USER: &str = "Throttling.User";
    /// HTTP 503.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    /// HTTP 500.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// HTTP 404: unknown `Action`, unknown `Version`, or a path other than `/`.
    pub const INVALID_API_NOT_FOUND: &str = "InvalidApi.NotFound";
    /// HTTP 400: a method other than GET or POST.
    pub const UNSUPPORTED_HTTP_METHOD: &str = "UnsupportedHTTPMethod";
    /// HTTP 200 (business): `ChannelType` other than `WHATSAPP`.
    pub const CHANNEL_TYPE_NOT_SUPPORT: &str = "InvalidParameter.ChannelTypeNotSupport";
    /// HTTP 200 (business): `Page` is not JSON, `Index < 1`, or `Size` outside 1..=100.
    pub const PAGE_INVALID: &str = "InvalidParameter.PageInvalid";
    /// STS, HTTP 401: the OIDC token has expired (its `exp` claim has passed).
    pub const OIDC_TOKEN_EXPIRED: &str = "AuthenticationFail.OIDCToken.Expired";
    /// STS, HTTP 401: the OIDC token is empty, malformed or not issued by the provider.
    pub const OIDC_TOKEN_INVALID: &str = "AuthenticationFail.OIDCToken.Invalid";
    /// STS, HTTP 401: no such OIDC provider is registered (`OIDCProviderArn`).
    pub const AUTHENTICATION_FAIL_NO_PERMISSION: &str = "AuthenticationFail.NoPermission";
    /// STS, HTTP 404: the role of `RoleArn` does not exist.
    pub const ENTITY_NOT_EXIST_ROLE: &str = "EntityNotExist.Role";
    /// STS, HTTP 400: `DurationSeconds` is outside 900 s to the role's maximum session duration.
    pub const INVALID_DURATION_SECONDS: &str = "InvalidParameter.DurationSeconds";
    /// STS, HTTP 400: `RoleSessionName` is not 2 to 64 of `A-Za-z0-9.@-_`.
    pub const INVALID_ROLE_SESSION_NAME: &str = "InvalidParameter.RoleSessionName";
}

/// A simulator that could not start or be configured. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("simulator: cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The config file could not be read.
    #[error("simulator: cannot read the config file {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The config file is not valid YAML/JSON of the expected shape.
    #[error("simulator: the config file {path} is invalid: {detail}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        detail: String,
    },
    /// The configuration breaks a rule.
    #[error("simulator: invalid configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// An `--access-key` flag is malformed (its value is withheld: it holds a secret).
    #[error(
        "simulator: --access-key expects ID:SECRET or ID:SECRET:STS_TOKEN, none of them empty (value withheld)"
    )]
    InvalidAccessKeyFlag,
    /// A `--group` flag is malformed.
    #[error("simulator: invalid --group {value:?}: {detail}")]
    InvalidGroupFlag {
        /// The flag's value.
        value: String,
        /// What is wrong.
        detail: String,
    },
    /// Faults for an action break a rule.
    #[error("simulator: invalid faults for {action}: {detail}")]
    InvalidFaults {
        /// The action.
        action: String,
        /// What is wrong.
        detail: String,
    },
    /// A forced code breaks a rule.
    #[error("simulator: invalid forced code for group {group_id}: {detail}")]
    InvalidForcedCode {
        /// The group.
        group_id: String,
        /// What is wrong.
        detail: String,
    },
    /// A group breaks a rule.
    #[error("simulator: invalid group: {detail}")]
    InvalidGroup {
        /// What is wrong.
        detail: String,
    },
}

impl SimError {
    /// A short static label for the kind of failure.
    pub fn category(&self) -> &'static str {
        match self {
            SimError::Bind { .. } => "bind",
            SimError::ReadConfig { .. } => "read_config",
            SimError::ParseConfig { .. } | SimError::InvalidConfig { .. } => "invalid_config",
            SimError::InvalidAccessKeyFlag | SimError::InvalidGroupFlag { .. } => "invalid_flag",
            SimError::InvalidFaults { .. }
            | SimError::InvalidForcedCode { .. }
            | SimError::InvalidGroup { .. } => "invalid_setting",
        }
    }
    /// Whether trying again unchanged can help (only a busy address might free up).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SimError::Bind { .. })
    }
}

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
    /// The URL as a CAMS endpoint for the client.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_url(&self.url())
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

/// Reads and steers a running simulator: counters, the request log, groups, faults, forced
/// codes, keys and the clock. Cheap to clone; every method takes a short lock.
#[derive(Clone)]
pub struct SimHandle {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").finish_non_exhaustive()
    }
}

impl SimHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that
        // matters to a test double: keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// Calls received for `action` (whatever their outcome) since start or the last reset.
    pub fn call_count(&self, action: &str) -> u64 {
        self.lock().stats.get(action).map_or(0, |s| s.total)
    }
    /// Calls of `action` answered with `code`.
    pub fn code_count(&self, action: &str, code: &str) -> u64 {
        self.lock()
            .stats
            .get(action)
            .and_then(|s| s.by_code.get(code).copied())
            .unwrap_or(0)
    }
    /// Counters by action and the request log.
    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }
    /// The request log, oldest first (bounded: see [`SimulatorBuilder::log_capacity`]).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log()
    }
    /// The logged requests of `action`, oldest first.
    pub fn requests_for(&self, action: &str) -> Vec<LoggedRequest> {
        self.lock()
            .log()
            .into_iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .collect()
    }
    /// Clears the counters and the request log (groups, faults and keys stay).
    pub fn reset_counters(&self) {
        self.lock().reset_counters();
    }

    /// Replaces the faults of `action`.
    pub fn set_faults(&self, action: &str, faults: ActionFaults) -> Result<(), SimError> {
        faults
            .validate()
            .map_err(|detail| SimError::InvalidFaults {
                action: action.to_owned(),
                detail,
            })?;
        self.lock().faults.insert(action.to_owned(), faults);
        Ok(())
    }
    /// Removes the faults of `action`.
    pub fn clear_faults(&self, action: &str) {
        self.lock().faults.remove(action);
    }
    /// The faults of `action` now (with what is left of its script).
    pub fn faults(&self, action: &str) -> Option<ActionFaults> {
        self.lock().faults.get(action).cloned()
    }
    /// Answers every call naming `group_id` with business error `code` (HTTP 200).
    pub fn force_code(&self, group_id: &str, code: &str) {
        self.lock()
            .forced
            .insert(group_id.to_owned(), ForcedError::business(code));
    }
    /// Answers every call naming `group_id` with `error`.
    pub fn force_error(&self, group_id: &str, error: ForcedError) -> Result<(), SimError> {
        error
            .validate()
            .map_err(|detail| SimError::InvalidForcedCode {
                group_id: group_id.to_owned(),
                detail,
            })?;
        self.lock().forced.insert(group_id.to_owned(), error);
        Ok(())
    }
    /// Stops forcing a code for `group_id`.
    pub fn clear_forced_code(&self, group_id: &str) {
        self.lock().forced.remove(group_id);
    }
    /// Restarts every random stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.lock().reseed(seed);
    }

    /// The group, if it exists.
    pub fn group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
    ) -> Option<Group> {
        self.lock()
            .groups
            .get(&key(cust_space_id, business_number, group_id))
            .cloned()
    }
    /// Every group, ordered by (`custSpaceId`, `businessNumber`, `groupId`).
    pub fn groups(&self) -> Vec<Group> {
        self.lock().groups.values().cloned().collect()
    }
    /// Adds or replaces a group (stamping `gmtModifier` when it has none).
    pub fn upsert_group(&self, group: Group) -> Result<(), SimError> {
        group
            .validate()
            .map_err(|detail| SimError::InvalidGroup { detail })?;
        self.lock().put_group(group);
        Ok(())
    }
    /// Changes a group from outside the API (someone editing it in WhatsApp): `edit` runs on
    /// the stored group, then `gmtModifier` moves to now unless `edit` set it. `false` when the
    /// group does not exist.
    pub fn edit_group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
        edit: impl FnOnce(&mut Group),
    ) -> bool {
        let mut state = self.lock();
        let now = state.now().as_millisecond();
        let Some(group) = state
            .groups
            .get_mut(&key(cust_space_id, business_number, group_id))
        else {
            return false;
        };
        let before = group.gmt_modifier;
        edit(group);
        // The keys are the map's; an edit cannot move the group.
        group.cust_space_id = cust_space_id.to_owned();
        group.business_number = business_number.to_owned();
        group.group_id = group_id.to_owned();
        if group.gmt_modifier == before {
            group.gmt_modifier = Some(now);
        }
        true
    }
    /// Applies an admin edit: creates the group when it does not exist. Returns the result.
    pub fn apply_group_edit(&self, edit: GroupEdit) -> Result<Group, SimError> {
        let mut state = self.lock();
        let k = key(&edit.cust_space_id, &edit.business_number, &edit.group_id);
        let mut group = state.groups.get(&k).cloned().unwrap_or_else(|| {
            Group::new(
                edit.cust_space_id.as_str(),
                edit.business_number.as_str(),
                edit.group_id.as_str(),
            )
        });
        edit.apply(&mut group);
        group
            .validate()
            .map_err(|detail| SimError::InvalidGroup { detail })?;
        group.gmt_modifier = Some(state.now().as_millisecond());
        state.groups.insert(k, group.clone());
        Ok(group)
    }
    /// Sets a group's `GroupStatus`; `false` when the group does not exist.
    pub fn set_group_status(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
        status: &str,
    ) -> bool {
        self.edit_group(cust_space_id, business_number, group_id, |g| {
            g.group_status = status.to_owned();
        })
    }
    /// Removes a group, returning it.
    pub fn remove_group(
        &self,
        cust_space_id: &str,
        business_number: &str,
        group_id: &str,
    ) -> Option<Group> {
        self.lock()
            .groups
            .remove(&key(cust_space_id, business_number, group_id))
    }

    /// Accepts another key, or replaces the key with the same ID (rotation).
    pub fn add_access_key(&self, key: AccessKeySeed) {
        self.lock().keys.insert(key.id.clone(), key);
    }
    /// Stops accepting a key; `false` when it was not configured.
    pub fn remove_access_key(&self, id: &str) -> bool {
        self.lock().keys.remove(id).is_some()
    }

    /// The simulated STS's settings now.
    pub fn sts_config(&self) -> StsConfig {
        self.lock().sts.clone()
    }
    /// Replaces the simulated STS's settings (keys already issued stay valid).
    pub fn set_sts_config(&self, sts: StsConfig) -> Result<(), SimError> {
        sts.validate()
            .map_err(|detail| SimError::InvalidConfig { detail })?;
        self.lock().sts = sts;
        Ok(())
    }
    /// From now on STS accepts exactly these OIDC tokens (e.g. the rotated token only).
    pub fn accept_only_oidc_tokens(&self, tokens: &[&str]) {
        self.lock().sts.oidc_tokens = Some(
            tokens
                .iter()
                .map(|t| crate::cams::SecretString::new(*t))
                .collect(),
        );
    }
    /// From now on STS answers `token` with `AuthenticationFail.OIDCToken.Expired`.
    pub fn expire_oidc_token(&self, token: &str) {
        self.lock().sts.expire_oidc_token(token);
    }

    /// The simulator's current time.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }
    /// Freezes the clock at `at`.
    pub fn set_time(&self, at: Timestamp) {
        self.lock().clock = Clock::Fixed(at);
    }
    /// Runs the clock `offset` away from the system clock.
    pub fn set_clock_offset(&self, offset: SignedDuration) {
        self.lock().clock = Clock::System { offset };
    }
    /// Back to the system clock.
    pub fn use_system_clock(&self) {
        self.set_clock_offset(SignedDuration::ZERO);
    }
}

fn key(cust_space_id: &str, business_number: &str, group_id: &str) -> (String, String, String) {
    (
        cust_space_id.to_owned(),
        business_number.to_owned(),
        group_id.to_owned(),
    )
}

/// Builds the simulator of the `sim` command: the config file (if any), then the flags.
pub fn builder_from_args(args: &crate::cli::SimArgs) -> Result<SimulatorBuilder, SimError> {
    let crate::cli::SimArgs {
        addr,
        config,
        access_keys,
        groups,
    } = args;
    let mut sim_config = match config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::default(),
    };
    sim_config.apply_flags(access_keys, groups)?;
    Ok(Simulator::builder().config(sim_config).addr(*addr))
}
