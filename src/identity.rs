//! The operator's own Alibaba Cloud identity: the last step of credential resolution,
//! used for a ChatGroup that names no Secret and has no `cams-credentials` Secret in
//! its namespace.
//!
//! [`OperatorIdentity::from_env`] reads the environment once, at start-up, the way the official
//! Alibaba Cloud credential chain does:
//!
//! 1. **AccessKey from the environment**: [`ENV_ACCESS_KEY_ID`] and [`ENV_ACCESS_KEY_SECRET`],
//!    with an optional [`ENV_SECURITY_TOKEN`] for STS credentials. Checked first, so a key set
//!    on purpose wins over a pod identity.
//! 2. **RRSA** (RAM Roles for Service Accounts, ACK's pod identity): when [`ENV_ROLE_ARN`],
//!    [`ENV_OIDC_PROVIDER_ARN`] and [`ENV_OIDC_TOKEN_FILE`] are all set (the
//!    `ack-pod-identity-webhook` injects them), the operator exchanges the OIDC token that
//!    kubelet mounts for its ServiceAccount for temporary credentials with STS
//!    `AssumeRoleWithOIDC` ([`RrsaProvider`]). Optional: [`ENV_ROLE_SESSION_NAME`] (default
//!    [`DEFAULT_ROLE_SESSION_NAME`]) and the STS endpoint, [`ENV_STS_ENDPOINT`] (default
//!    [`DEFAULT_STS_ENDPOINT`]; a VPC endpoint is `sts-vpc.<region>.aliyuncs.com`) or, as the
//!    official SDKs read them, [`ENV_STS_REGION`] with [`ENV_VPC_ENDPOINT_ENABLED`].
//! 3. **None**: ChatGroups without a Secret report `CredentialsMissing`.
//!
//! Empty values (and surrounding whitespace) count as unset. A half-configured identity is an
//! error naming the missing variable, never a silent fallback: an AccessKey ID without its
//! secret (or the reverse), a security token without a key, or one or two of the three RRSA
//! variables. When a complete AccessKey is set, the RRSA variables are not looked at.
//!
//! RRSA credentials are cached and refreshed before they expire: a refresh starts once the
//! credentials are within [`RrsaConfig::refresh_margin`] of `Expiration` (5 minutes by default,
//! or a fifth of the lifetime for short-lived credentials). Concurrent callers share one
//! refresh. The token file is read again on every refresh, because kubelet rotates it. If a
//! refresh fails while the cached credentials are still valid, they keep being used (with a
//! warning) and the refresh is retried after [`RrsaConfig::retry_interval`]; once they have
//! expired, the error is returned. Every STS call runs under a timeout.
//!
//! The OIDC token, the AccessKey secret and the security token never appear in logs, errors or
//! `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::cams::answer::IssuedCredentials;
use crate::cams::client::{self, HttpCamsConfig, StampSource, SystemStamps};
use crate::cams::rpc::{self, Redactor, RpcError, Unreadable};
use crate::cams::sign::{self, FORMAT_JSON};
use crate::cams::{Credentials, Endpoint, ErrorKind, SecretString};
use crate::crd::Reason;
use jiff::{SignedDuration, Timestamp};

/// AccessKey ID of the operator's own key.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// AccessKey secret of the operator's own key.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// STS security token, when the operator's own key is temporary.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
/// RRSA: ARN of the RAM role to assume (`acs:ram::<account>:role/<name>`).
pub const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
/// RRSA: ARN of the cluster's OIDC identity provider
/// (`acs:ram::<account>:oidc-provider/<name>`).
pub const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
/// RRSA: path of the ServiceAccount OIDC token file kubelet keeps fresh (on ACK
/// `/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token`).
pub const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
/// RRSA, optional: `RoleSessionName`, shown in ActionTrail (default
/// [`DEFAULT_ROLE_SESSION_NAME`]).
pub const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
/// RRSA, optional: the STS endpoint, a host (`sts-vpc.cn-hangzhou.aliyuncs.com`) or a URL
/// (`https://sts-vpc.cn-hangzhou.aliyuncs.com/`). Wins over [`ENV_STS_REGION`].
pub const ENV_STS_ENDPOINT: &str = "ALIBABA_CLOUD_STS_ENDPOINT";
/// RRSA, optional: the region of the STS endpoint (`sts.<region>.aliyuncs.com`), as the official
/// SDKs read it.
pub const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
/// RRSA, optional: `true` selects the VPC endpoint of [`ENV_STS_REGION`]
/// (`sts-vpc.<region>.aliyuncs.com`), as the official SDKs read it.
pub const ENV_VPC_ENDPOINT_ENABLED: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";

/// The public STS endpoint, used when no other is configured.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com/";
pub const STS_API_VERSION: &str = "2015-04-01";
/// Action name of the OIDC role exchange.
pub const ACTION_ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";
/// `RoleSessionName` when [`ENV_ROLE_SESSION_NAME`] is not set.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "cams-operator";
/// Lifetime asked for (`DurationSeconds`); the role's maximum session duration must allow it.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// Shortest lifetime STS issues.
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// How long before `Expiration` a refresh starts (at most a fifth of the lifetime).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long after a failed refresh the next one may start.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Largest OIDC token file read (STS accepts tokens up to 20,000 characters).
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// What went wrong, in the closed set behind [`IdentityError::category`],
/// [`IdentityError::is_retryable`] and [`IdentityError::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityErrorKind {
    /// The RRSA environment is only partly set.
    IncompleteConfig,
    /// A setting has a value that cannot work.
    InvalidConfig,
    /// The STS client could not be built.
    ClientBuild,
    /// The OIDC token file could not be read.
    TokenFile,
    /// STS refused the token, the role or the provider.
    StsRejected,
    /// STS throttled the request.
    StsThrottled,
    /// STS failed on its side.
    StsUnavailable,
    /// STS could not be reached.
    Transport,
    /// STS did not answer in time.
    Timeout,
    /// STS answered with something that is not a usable response.
    InvalidResponse,
}

impl IdentityErrorKind {
    /// What an STS refusal classified as `kind` (by the classification CAMS answers go through
    /// too) means for the identity: throttled, failing on STS's side, or refused (a token,
    /// role or provider STS does not accept, and anything else: only the first two pass).
    fn of_sts(kind: ErrorKind) -> IdentityErrorKind {
        match kind {
            ErrorKind::Throttled => IdentityErrorKind::StsThrottled,
            ErrorKind::Unavailable => IdentityErrorKind::StsUnavailable,
            _ => IdentityErrorKind::StsRejected,
        }
    }

    /// Every kind.
    pub const ALL: [IdentityErrorKind; 10] = [
        IdentityErrorKind::IncompleteConfig,
        IdentityErrorKind::InvalidConfig,
        IdentityErrorKind::ClientBuild,
        IdentityErrorKind::TokenFile,
        IdentityErrorKind::StsRejected,
        IdentityErrorKind::StsThrottled,
        IdentityErrorKind::StsUnavailable,
        IdentityErrorKind::Transport,
        IdentityErrorKind::Timeout,
        IdentityErrorKind::InvalidResponse,
    ];

    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityErrorKind::IncompleteConfig => "incomplete_config",
            IdentityErrorKind::InvalidConfig => "invalid_config",
            IdentityErrorKind::ClientBuild => "client_build",
            IdentityErrorKind::TokenFile => "token_file",
            IdentityErrorKind::StsRejected => "sts_rejected",
            IdentityErrorKind::StsThrottled => "sts_throttled",
            IdentityErrorKind::StsUnavailable => "sts_unavailable",
            IdentityErrorKind::Transport => "transport",
            IdentityErrorKind::Timeout => "timeout",
            IdentityErrorKind::InvalidResponse => "invalid_response",
        }
    }
}

/// The operator's own identity could not be set up or could not produce credentials. Never
/// contains the OIDC token, an AccessKey secret or a security token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    /// Some, not all, of the variables of one identity are set.
    #[error(
        "operator identity: {missing} is not set (or empty) while {set} is; set it too, or unset the others", set = .set.join(" and ")
    )]
    IncompleteConfig {
        /// The first variable that is missing.
        missing: &'static str,
        /// The variables of the same identity that are set.
        set: Vec<&'static str>,
    },
    /// A variable has a value that is not allowed.
    #[error("operator identity: {variable} is invalid: {detail}")]
    InvalidConfig {
        /// The variable (or setting) at fault.
        variable: &'static str,
        /// What is wrong and what is allowed.
        detail: String,
    },
    /// The HTTP client for STS could not be built (TLS set-up).
    #[error("operator identity: cannot build the STS HTTP client: {detail}")]
    ClientBuild {
        /// What failed.
        detail: String,
    },
    /// The OIDC token file could not be read, or is empty or too large.
    #[error("RRSA: cannot read the OIDC token file {path}: {source}")]
    ReadTokenFile {
        /// The file ([`ENV_OIDC_TOKEN_FILE`]).
        path: PathBuf,
        /// Cause.
        source: Arc<std::io::Error>,
    },
    /// STS refused `AssumeRoleWithOIDC`.
    #[error("RRSA: STS AssumeRoleWithOIDC for role {role_arn} failed with HTTP {http_status}: {code}: {message} (RequestId {request_id})", code = .code.as_deref().unwrap_or("no code"), message = .message.as_deref().unwrap_or(""), request_id = .request_id.as_deref().unwrap_or("none"))]
    AssumeRole {
        /// The role asked for.
        role_arn: String,
        http_status: u16,
        /// `Code`, e.g. `AuthenticationFail.OIDCToken.Expired`.
        code: Option<String>,
        message: Option<String>,
        request_id: Option<String>,
    },
    /// Connection, TLS or protocol failure before STS answered.
    #[error("RRSA: STS AssumeRoleWithOIDC could not be sent to {endpoint}: {detail}")]
    Transport {
        /// STS endpoint.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// No answer within the timeout.
    #[error("RRSA: STS AssumeRoleWithOIDC to {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// STS endpoint.
        endpoint: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// STS answered with something that is not a usable `AssumeRoleWithOIDC` response.
    #[error("RRSA: STS AssumeRoleWithOIDC answered HTTP {http_status} with an unusable response: {detail} (RequestId {request_id})", request_id = .request_id.as_deref().unwrap_or("none"))]
    InvalidResponse {
        http_status: u16,
        /// What is wrong (never the body: a 2xx body holds the secret).
        detail: String,
        /// `RequestId`, when readable.
        request_id: Option<String>,
    },
}

impl IdentityError {
    /// What went wrong.
    pub fn kind(&self) -> IdentityErrorKind {
        match self {
            IdentityError::IncompleteConfig { .. } => IdentityErrorKind::IncompleteConfig,
            IdentityError::InvalidConfig { .. } => IdentityErrorKind::InvalidConfig,
            IdentityError::ClientBuild { .. } => IdentityErrorKind::ClientBuild,
            IdentityError::ReadTokenFile { .. } => IdentityErrorKind::TokenFile,
            IdentityError::AssumeRole {
                http_status, code, ..
            } => IdentityErrorKind::of_sts(ErrorKind::of_response(code.as_deref(), *http_status)),
            IdentityError::Transport { .. } => IdentityErrorKind::Transport,
            IdentityError::Timeout { .. } => IdentityErrorKind::Timeout,
            IdentityError::InvalidResponse { .. } => IdentityErrorKind::InvalidResponse,
        }
    }

    /// A short, bounded label for metrics and logs (see [`IdentityErrorKind::as_str`]).
    pub fn category(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Whether trying again later can help: a token file that is missing or being rewritten,
    /// transport failures, timeouts, throttling and STS-side failures (HTTP 5xx). A rejected
    /// token, role or provider, and a configuration error, are terminal until the
    /// configuration (or the RAM role's trust policy) changes.
    pub fn is_retryable(&self) -> bool {
        match self.kind() {
            IdentityErrorKind::TokenFile
            | IdentityErrorKind::Transport
            | IdentityErrorKind::Timeout
            | IdentityErrorKind::StsThrottled
            | IdentityErrorKind::StsUnavailable => true,
            IdentityErrorKind::InvalidResponse => {
                matches!(self, IdentityError::InvalidResponse { http_status, .. } if *http_status >= 500)
            }
            IdentityErrorKind::StsRejected
            | IdentityErrorKind::IncompleteConfig
            | IdentityErrorKind::InvalidConfig
            | IdentityErrorKind::ClientBuild => false,
        }
    }

    /// The condition reason that reports this error on a ChatGroup that relies on the
    /// operator's identity: `CredentialsMissing` when the identity is not usable as configured
    /// (configuration, token file), `CredentialsInvalid` when STS refused it, `Throttled` when
    /// STS throttled, `CamsUnavailable` when STS could not be reached or failed on its side.
    pub fn reason(&self) -> Reason {
        match self.kind() {
            IdentityErrorKind::IncompleteConfig
            | IdentityErrorKind::InvalidConfig
            | IdentityErrorKind::ClientBuild
            | IdentityErrorKind::TokenFile => Reason::CredentialsMissing,
            IdentityErrorKind::StsThrottled => Reason::Throttled,
            IdentityErrorKind::StsUnavailable
            | IdentityErrorKind::Transport
            | IdentityErrorKind::Timeout => Reason::CamsUnavailable,
            IdentityErrorKind::InvalidResponse if self.is_retryable() => Reason::CamsUnavailable,
            IdentityErrorKind::InvalidResponse | IdentityErrorKind::StsRejected => {
                Reason::CredentialsInvalid
            }
        }
    }

    /// The STS `Code`, when STS answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            IdentityError::AssumeRole { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The STS `RequestId`, when STS answered with one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            IdentityError::AssumeRole { request_id, .. }
            | IdentityError::InvalidResponse { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Where the operator's own credentials come from (see the [module docs](self)).
#[derive(Clone, Debug)]
pub enum OperatorIdentity {
    /// No identity: ChatGroups need a Secret.
    None,
    /// A fixed AccessKey (and optional security token) from the environment.
    Static(Credentials),
    /// RRSA: temporary credentials from STS `AssumeRoleWithOIDC`, cached and refreshed.
    Rrsa(RrsaProvider),
}

impl OperatorIdentity {
    /// Reads the process environment (see the [module docs](self) for the rules).
    pub fn from_env() -> Result<OperatorIdentity, IdentityError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with the variables read through `lookup` (tests pass
    /// a map). Reads no file and makes no call: the token file is read at the first
    /// [`current`](Self::current).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<OperatorIdentity, IdentityError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let id = get(ENV_ACCESS_KEY_ID);
        let secret = get(ENV_ACCESS_KEY_SECRET);
        let token = get(ENV_SECURITY_TOKEN);
        match (id, secret) {
            (Some(id), Some(secret)) => {
                return Ok(OperatorIdentity::Static(Credentials {
                    access_key_id: id,
                    access_key_secret: SecretString::new(secret),
                    security_token: token.map(SecretString::new),
                }));
            }
            (Some(_), None) => {
                return Err(incomplete(
                    ENV_ACCESS_KEY_SECRET,
                    [ENV_ACCESS_KEY_ID]
                        .into_iter()
                        .chain(token.as_ref().map(|_| ENV_SECURITY_TOKEN)),
                ));
            }
            (None, Some(_)) => {
                return Err(incomplete(
                    ENV_ACCESS_KEY_ID,
                    [ENV_ACCESS_KEY_SECRET]
                        .into_iter()
                        .chain(token.as_ref().map(|_| ENV_SECURITY_TOKEN)),
                ));
            }
            (None, None) if token.is_some() => {
                return Err(incomplete(ENV_ACCESS_KEY_ID, [ENV_SECURITY_TOKEN]));
            }
            (None, None) => {}
        }

        let rrsa = [ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE].map(|n| (n, get(n)));
        let set: Vec<&'static str> = rrsa
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        let [
            (_, Some(role_arn)),
            (_, Some(provider_arn)),
            (_, Some(token_file)),
        ] = rrsa
        else {
            if set.is_empty() {
                return Ok(OperatorIdentity::None);
            }
            let missing = rrsa
                .iter()
                .find(|(_, v)| v.is_none())
                .map_or(ENV_ROLE_ARN, |(n, _)| *n);
            return Err(IdentityError::IncompleteConfig { missing, set });
        };

        let mut config = RrsaConfig::new(role_arn, provider_arn, token_file);
        if let Some(name) = get(ENV_ROLE_SESSION_NAME) {
            config.role_session_name = name;
        }
        config.sts_endpoint = sts_endpoint(
            get(ENV_STS_ENDPOINT),
            get(ENV_STS_REGION),
            get(ENV_VPC_ENDPOINT_ENABLED),
        )?;
        RrsaProvider::new(config).map(OperatorIdentity::Rrsa)
    }

    /// The credentials to use now: `None` for [`OperatorIdentity::None`], the fixed key for
    /// [`OperatorIdentity::Static`], and for [`OperatorIdentity::Rrsa`] the cached temporary
    /// credentials, refreshed first when due ([`RrsaProvider::credentials`]).
    pub async fn current(&self) -> Result<Option<Credentials>, IdentityError> {
        match self {
            OperatorIdentity::None => Ok(None),
            OperatorIdentity::Static(credentials) => Ok(Some(credentials.clone())),
            OperatorIdentity::Rrsa(provider) => provider.credentials().await.map(Some),
        }
    }

    /// Whether the operator has an identity of its own (anything but
    /// [`OperatorIdentity::None`]). Asks nobody: no STS call.
    pub fn is_configured(&self) -> bool {
        !matches!(self, OperatorIdentity::None)
    }

    /// `none`, `static` or `rrsa`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorIdentity::None => "none",
            OperatorIdentity::Static(_) => "static",
            OperatorIdentity::Rrsa(_) => "rrsa",
        }
    }
}

fn incomplete(missing: &'static str, set: impl IntoIterator<Item = &'static str>) -> IdentityError {
    IdentityError::IncompleteConfig {
        missing,
        set: set.into_iter().collect(),
    }
}

/// The STS endpoint from [`ENV_STS_ENDPOINT`] (a host or a URL), else from [`ENV_STS_REGION`]
/// and [`ENV_VPC_ENDPOINT_ENABLED`], else [`DEFAULT_STS_ENDPOINT`].
fn sts_endpoint(
    endpoint: Option<String>,
    region: Option<String>,
    vpc: Option<String>,
) -> Result<String, IdentityError> {
    if let Some(endpoint) = endpoint {
        return Ok(if endpoint.contains("://") {
            endpoint
        } else {
            format!("https://{endpoint}/")
        });
    }
    let Some(region) = region else {
        return Ok(DEFAULT_STS_ENDPOINT.to_owned());
    };
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(IdentityError::InvalidConfig {
            variable: ENV_STS_REGION,
            detail: format!(
                "{region:?} is not a region id; expected lowercase letters, digits and '-', e.g. cn-hangzhou"
            ),
        });
    }
    let prefix = match vpc.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => "sts",
        Some("true") => "sts-vpc",
        Some(other) => {
            return Err(IdentityError::InvalidConfig {
                variable: ENV_VPC_ENDPOINT_ENABLED,
                detail: format!("{other:?} is not allowed; use true or false"),
            });
        }
    };
    Ok(format!("https://{prefix}.{region}.aliyuncs.com/"))
}

/// Settings of [`RrsaProvider`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsaConfig {
    /// `RoleArn`: the RAM role to assume.
    pub role_arn: String,
    /// `OIDCProviderArn`: the cluster's OIDC identity provider.
    pub oidc_provider_arn: String,
    /// The OIDC token file, read again on every refresh.
    pub token_file: PathBuf,
    /// `RoleSessionName`: 2 to 64 of `A-Z a-z 0-9 . @ - _`.
    pub role_session_name: String,
    /// STS endpoint URL, e.g. [`DEFAULT_STS_ENDPOINT`] or `https://sts-vpc.<region>.aliyuncs.com/`
    /// (`http://` only for a local simulator).
    pub sts_endpoint: String,
    /// `DurationSeconds`: the lifetime asked for, whole seconds, at least [`MIN_DURATION`] (the
    /// role's maximum session duration must allow it).
    pub duration: Duration,
    /// How long before `Expiration` a refresh starts; capped at a fifth of the lifetime STS
    /// granted, so short-lived credentials are still used for most of their life.
    pub refresh_margin: Duration,
    /// How long after a failed refresh the next one may start (meanwhile still-valid cached
    /// credentials, or the last error, are returned without calling STS).
    pub retry_interval: Duration,
    /// Timeouts and `User-Agent` of the STS calls (the same defaults as CAMS calls). The whole
    /// refresh, token file included, is bounded by the sum of both timeouts.
    pub http: HttpCamsConfig,
}

impl RrsaConfig {
    /// The settings for a role, provider and token file, with every default.
    pub fn new(
        role_arn: impl Into<String>,
        oidc_provider_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        RrsaConfig {
            role_arn: role_arn.into(),
            oidc_provider_arn: oidc_provider_arn.into(),
            token_file: token_file.into(),
            role_session_name: DEFAULT_ROLE_SESSION_NAME.to_owned(),
            sts_endpoint: DEFAULT_STS_ENDPOINT.to_owned(),
            duration: DEFAULT_DURATION,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            http: HttpCamsConfig::default(),
        }
    }

    /// Checks every setting. The error names the variable and what is allowed.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let invalid = |variable, detail: String| IdentityError::InvalidConfig { variable, detail };
        for (variable, value) in [
            (ENV_ROLE_ARN, &self.role_arn),
            (ENV_OIDC_PROVIDER_ARN, &self.oidc_provider_arn),
        ] {
            if value.is_empty() {
                return Err(invalid(variable, "must not be empty".into()));
            }
        }
        if self.token_file.as_os_str().is_empty() {
            return Err(invalid(ENV_OIDC_TOKEN_FILE, "must not be empty".into()));
        }
        let name = &self.role_session_name;
        if !(2..=64).contains(&name.len())
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'))
        {
            return Err(invalid(
                ENV_ROLE_SESSION_NAME,
                format!(
                    "{name:?} is not allowed; use 2 to 64 letters, digits, '.', '@', '-' or '_'"
                ),
            ));
        }
        client::endpoint_url(&Endpoint::from_url(&self.sts_endpoint))
            .map_err(|detail| invalid(ENV_STS_ENDPOINT, detail))?;
        if self.duration < MIN_DURATION || self.duration.subsec_nanos() != 0 {
            return Err(invalid(
                "duration",
                format!(
                    "{:?} is not allowed; use whole seconds, at least {}",
                    self.duration,
                    MIN_DURATION.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// The bound on one whole refresh (token file and STS call).
    fn refresh_timeout(&self) -> Duration {
        self.http
            .connect_timeout
            .saturating_add(self.http.request_timeout)
    }
}

/// Credentials from STS, with when to refresh them.
#[derive(Clone)]
struct Cached {
    credentials: Credentials,
    expiration: Timestamp,
    refresh_at: Timestamp,
}

/// Refresh bookkeeping, behind the single-flight lock.
#[derive(Default)]
struct RefreshState {
    /// After a failure: no new attempt before this time...
    retry_at: Option<Timestamp>,
    /// ...and, when nothing valid is cached, this error is returned meanwhile.
    last_error: Option<IdentityError>,
}

struct Shared {
    cached: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// RRSA credentials: STS `AssumeRoleWithOIDC` with the pod's OIDC token, cached and refreshed
/// before `Expiration` (see the [module docs](self)).
///
/// Cheap to clone; clones share the cache. The request is anonymous (the OIDC token is the
/// proof, no AccessKey signs it): `POST` to the STS endpoint with `Action`, `Version`, `Format`
/// and `Timestamp` in the query and `RoleArn`, `OIDCProviderArn`, `OIDCToken`,
/// `RoleSessionName` and `DurationSeconds` in an `application/x-www-form-urlencoded` body, so
/// that the token never travels in a URL.
#[derive(Clone)]
pub struct RrsaProvider {
    config: Arc<RrsaConfig>,
    http: reqwest::Client,
    stamps: Arc<dyn StampSource>,
    shared: Arc<Shared>,
}

impl fmt::Debug for RrsaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RrsaProvider")
            .field("config", &self.config)
            .field("cached_expiration", &self.cached_expiration())
            .finish_non_exhaustive()
    }
}

impl RrsaProvider {
    /// Checks `config` and builds the provider (with the system clock). Makes no call.
    pub fn new(config: RrsaConfig) -> Result<Self, IdentityError> {
        config.validate()?;
        let http =
            client::build_http_client(&config.http).map_err(|err| IdentityError::ClientBuild {
                detail: err.to_string(),
            })?;
        Ok(RrsaProvider {
            config: Arc::new(config),
            http,
            stamps: Arc::new(SystemStamps),
            shared: Arc::new(Shared {
                cached: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            }),
        })
    }

    /// The same provider reading the time from `stamps` (tests steer it); only
    /// [`StampSource::now`] is used. Call it before cloning: clones keep the clock they had.
    pub fn with_stamps(mut self, stamps: impl StampSource + 'static) -> Self {
        self.stamps = Arc::new(stamps);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &RrsaConfig {
        &self.config
    }

    /// `Expiration` of the cached credentials, if any.
    pub fn cached_expiration(&self) -> Option<Timestamp> {
        self.cached().map(|c| c.expiration)
    }

    fn cached(&self) -> Option<Cached> {
        self.shared
            .cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, fresh: Cached) {
        *self
            .shared
            .cached
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(fresh);
    }

    /// The credentials to use now. Served from the cache until the refresh point; then one
    /// caller refreshes while the others wait for it (or, when the cached credentials are still
    /// valid, keep using them). A failed refresh falls back to still-valid cached credentials
    /// (with a warning) and is retried after [`RrsaConfig::retry_interval`]; without valid
    /// credentials the error is returned.
    pub async fn credentials(&self) -> Result<Credentials, IdentityError> {
        let now = self.stamps.now();
        let cached = self.cached();
        if let Some(c) = cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(c.credentials.clone());
        }
        let mut state = match self.shared.refresh.try_lock() {
            Ok(state) => state,
            Err(_) => {
                // Someone else is refreshing: valid credentials do for now.
                if let Some(c) = cached.filter(|c| now < c.expiration) {
                    return Ok(c.credentials);
                }
                self.shared.refresh.lock().await
            }
        };
        // Re-check: the refresh we waited for may have done the work.
        let now = self.stamps.now();
        let cached = self.cached();
        if let Some(c) = cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(c.credentials.clone());
        }
        let valid = cached.filter(|c| now < c.expiration);
        if state.retry_at.is_some_and(|at| now < at) {
            match (&valid, &state.last_error) {
                (Some(c), _) => return Ok(c.credentials.clone()),
                (None, Some(err)) => return Err(err.clone()),
                (None, None) => {}
            }
        }
        match self.refresh().await {
            Ok(fresh) => {
                *state = RefreshState::default();
                let credentials = fresh.credentials.clone();
                self.store(fresh);
                Ok(credentials)
            }
            Err(err) => {
                let now = self.stamps.now();
                state.retry_at = now.checked_add(self.config.retry_interval).ok();
                state.last_error = Some(err.clone());
                match valid.filter(|c| now < c.expiration) {
                    Some(c) => {
                        tracing::warn!(
                            role_arn = %self.config.role_arn,
                            access_key_id = %c.credentials.access_key_id,
                            expiration = %c.expiration,
                            category = err.category(),
                            error = %err,
                            "RRSA refresh failed; using the cached credentials until they expire"
                        );
                        Ok(c.credentials)
                    }
                    None => {
                        tracing::warn!(
                            role_arn = %self.config.role_arn,
                            category = err.category(),
                            error = %err,
                            "RRSA: no valid credentials"
                        );
                        Err(err)
                    }
                }
            }
        }
    }

    /// One refresh under the overall timeout.
    async fn refresh(&self) -> Result<Cached, IdentityError> {
        let timeout = self.config.refresh_timeout();
        match tokio::time::timeout(timeout, self.assume_role()).await {
            Ok(result) => result,
            Err(_) => Err(IdentityError::Timeout {
                endpoint: self.config.sts_endpoint.clone(),
                timeout,
            }),
        }
    }

    /// Reads the token file and calls `AssumeRoleWithOIDC`.
    async fn assume_role(&self) -> Result<Cached, IdentityError> {
        let config = &*self.config;
        let endpoint = config.sts_endpoint.as_str();
        let token = read_token_file(&config.token_file).await?;
        let mut url = client::endpoint_url(&Endpoint::from_url(endpoint)).map_err(|detail| {
            IdentityError::InvalidConfig {
                variable: ENV_STS_ENDPOINT,
                detail,
            }
        })?;
        let timestamp = sign::format_timestamp(self.stamps.now());
        url.set_query(Some(&sign::encode_query(&[
            ("Action", ACTION_ASSUME_ROLE_WITH_OIDC),
            ("Format", FORMAT_JSON),
            ("Version", STS_API_VERSION),
            ("Timestamp", timestamp.as_str()),
        ])));
        let duration = config.duration.as_secs().to_string();
        let body = sign::encode_query(&[
            ("DurationSeconds", duration.as_str()),
            ("OIDCProviderArn", config.oidc_provider_arn.as_str()),
            ("OIDCToken", token.expose()),
            ("RoleArn", config.role_arn.as_str()),
            ("RoleSessionName", config.role_session_name.as_str()),
        ]);
        tracing::debug!(
            role_arn = %config.role_arn,
            endpoint,
            "RRSA: calling STS AssumeRoleWithOIDC"
        );

        let request = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let redactor = Redactor::new([token.expose()]);
        let answer = rpc::exchange(request, config.http.timeouts(), &redactor)
            .await
            .map_err(|err| IdentityError::from_rpc(endpoint, err))?;
        let http_status = answer.http_status;
        let success = answer.is_success();
        let envelope = answer.into_envelope();
        let request_id = envelope.request_id;
        if !success {
            return Err(IdentityError::AssumeRole {
                role_arn: config.role_arn.clone(),
                http_status,
                code: envelope.code,
                message: envelope.message,
                request_id,
            });
        }
        let now = self.stamps.now();
        let (credentials, expiration) =
            issued_credentials(envelope.credentials, http_status, &request_id, now)?;
        let refresh_at = refresh_point(now, expiration, config.refresh_margin);
        tracing::info!(
            role_arn = %config.role_arn,
            access_key_id = %credentials.access_key_id,
            expiration = %expiration,
            refresh_at = %refresh_at,
            request_id = request_id.as_deref().unwrap_or("none"),
            "RRSA: assumed the role"
        );
        Ok(Cached {
            credentials,
            expiration,
            refresh_at,
        })
    }
}

impl IdentityError {
    /// An exchange with STS that produced no readable answer. Never carries the body: a 2xx
    /// body holds the issued secret.
    fn from_rpc(endpoint: &str, err: RpcError) -> Self {
        match err {
            RpcError::Transport { detail } => IdentityError::Transport {
                endpoint: endpoint.to_owned(),
                detail,
            },
            RpcError::Timeout { timeout } => IdentityError::Timeout {
                endpoint: endpoint.to_owned(),
                timeout,
            },
            // Never the body: a 2xx body holds the secret.
            RpcError::Unreadable(Unreadable::TooLarge { http_status, limit }) => {
                IdentityError::InvalidResponse {
                    http_status,
                    detail: format!("the body is over the {limit}-byte limit"),
                    request_id: None,
                }
            }
            RpcError::Unreadable(Unreadable::NotAnObject { http_status, .. }) => {
                IdentityError::InvalidResponse {
                    http_status,
                    detail: "the body is not a JSON object".into(),
                    request_id: None,
                }
            }
        }
    }
}

/// The credentials in a successful `AssumeRoleWithOIDC` answer, and their expiry, which must
/// be after `now`.
fn issued_credentials(
    issued: Option<IssuedCredentials>,
    http_status: u16,
    request_id: &Option<String>,
    now: Timestamp,
) -> Result<(Credentials, Timestamp), IdentityError> {
    let invalid = |detail: String| IdentityError::InvalidResponse {
        http_status,
        detail,
        request_id: request_id.clone(),
    };
    let issued = issued.ok_or_else(|| invalid("Credentials is missing".into()))?;
    let missing = |name: &str| invalid(format!("Credentials.{name} is missing"));
    let credentials = Credentials {
        access_key_id: issued.access_key_id.ok_or_else(|| missing("AccessKeyId"))?,
        access_key_secret: issued
            .access_key_secret
            .ok_or_else(|| missing("AccessKeySecret"))?,
        security_token: Some(
            issued
                .security_token
                .ok_or_else(|| missing("SecurityToken"))?,
        ),
    };
    let raw_expiration = issued.expiration.ok_or_else(|| missing("Expiration"))?;
    let expiration: Timestamp = raw_expiration.parse().map_err(|_| {
        invalid(format!(
            "Credentials.Expiration {raw_expiration:?} is not an ISO 8601 UTC time"
        ))
    })?;
    if expiration <= now {
        return Err(invalid(format!(
            "Credentials.Expiration {expiration} is not after the local time {now}; is the clock right?"
        )));
    }
    Ok((credentials, expiration))
}

/// When credentials obtained at `now` and expiring at `expiration` should be refreshed:
/// `margin` before `expiration`, but never more than a fifth of the lifetime before it.
fn refresh_point(now: Timestamp, expiration: Timestamp, margin: Duration) -> Timestamp {
    let lifetime = expiration.duration_since(now);
    let fifth = lifetime / 5;
    let margin = SignedDuration::try_from(margin).unwrap_or(SignedDuration::MAX);
    let margin = if margin < fifth { margin } else { fifth };
    expiration.checked_sub(margin).unwrap_or(now)
}

/// Reads the OIDC token: at most [`MAX_TOKEN_FILE_BYTES`], surrounding whitespace removed,
/// not empty.
async fn read_token_file(path: &Path) -> Result<SecretString, IdentityError> {
    use tokio::io::AsyncReadExt as _;
    let failed = |source: std::io::Error| IdentityError::ReadTokenFile {
        path: path.to_owned(),
        source: Arc::new(source),
    };
    let file = tokio::fs::File::open(path).await.map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(failed)?;
    let invalid =
        |detail: &str| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, detail));
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_TOKEN_FILE_BYTES {
        return Err(invalid("the file is larger than 64 KiB, not an OIDC token"));
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid("the file is not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(invalid("the file is empty"));
    }
    Ok(SecretString::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    #[test]
    fn refresh_point_uses_the_margin_or_a_fifth_of_short_lifetimes() {
        let now = at("2026-11-26T06:00:00Z");
        assert_eq!(
            refresh_point(now, at("2026-11-26T07:00:00Z"), DEFAULT_REFRESH_MARGIN),
            at("2026-11-26T06:55:00Z")
        );
        // 15 minutes: a fifth is 3 minutes, less than the 5-minute margin.
        assert_eq!(
            refresh_point(now, at("2026-11-26T06:15:00Z"), DEFAULT_REFRESH_MARGIN),
            at("2026-11-26T06:12:00Z")
        );
        assert_eq!(
            refresh_point(now, at("2026-11-26T06:00:10Z"), Duration::from_secs(60)),
            at("2026-11-26T06:00:08Z")
        );
    }

    #[test]
    fn sts_endpoint_sources() {
        assert_eq!(
            sts_endpoint(None, None, None).unwrap(),
            DEFAULT_STS_ENDPOINT
        );
        assert_eq!(
            sts_endpoint(Some("sts-vpc.cn-hangzhou.aliyuncs.com".into()), None, None).unwrap(),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            sts_endpoint(Some("http://127.0.0.1:9/".into()), Some("x".into()), None).unwrap(),
            "http://127.0.0.1:9/"
        );
        assert_eq!(
            sts_endpoint(None, Some("cn-hangzhou".into()), Some("TRUE".into())).unwrap(),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            sts_endpoint(None, Some("ap-southeast-1".into()), None).unwrap(),
            "https://sts.ap-southeast-1.aliyuncs.com/"
        );
        assert!(sts_endpoint(None, Some("Bad Region".into()), None).is_err());
        assert!(sts_endpoint(None, Some("cn-hangzhou".into()), Some("yes".into())).is_err());
    }

    #[test]
    fn scrub_removes_raw_and_encoded_forms() {
        let secret = "eyJ.tok+en/x=";
        let text = format!("bad {secret} and {}", sign::pop_encode(secret));
        let out = Redactor::new([secret]).scrub(text);
        assert!(!out.contains("tok+en"), "{out}");
        assert!(!out.contains("tok%2Ben"), "{out}");
        assert_eq!(out.matches("<redacted>").count(), 2);
        assert_eq!(Redactor::new(["sh"]).scrub("short".into()), "short");
    }

    #[test]
    fn categories_are_bounded_and_classified() {
        let sts = |status: u16, code: &str| IdentityError::AssumeRole {
            role_arn: "r".into(),
            http_status: status,
            code: Some(code.into()),
            message: None,
            request_id: None,
        };
        let table: &[(IdentityError, &str, bool, Reason)] = &[
            (
                sts(401, "AuthenticationFail.OIDCToken.Expired"),
                "sts_rejected",
                false,
                Reason::CredentialsInvalid,
            ),
            (
                sts(400, "Throttling.User"),
                "sts_throttled",
                true,
                Reason::Throttled,
            ),
            (
                sts(503, "ServiceUnavailable"),
                "sts_unavailable",
                true,
                Reason::CamsUnavailable,
            ),
            (
                sts(500, "Weird"),
                "sts_unavailable",
                true,
                Reason::CamsUnavailable,
            ),
            (
                IdentityError::InvalidResponse {
                    http_status: 502,
                    detail: "x".into(),
                    request_id: None,
                },
                "invalid_response",
                true,
                Reason::CamsUnavailable,
            ),
            (
                IdentityError::InvalidResponse {
                    http_status: 200,
                    detail: "x".into(),
                    request_id: None,
                },
                "invalid_response",
                false,
                Reason::CredentialsInvalid,
            ),
            (
                IdentityError::ReadTokenFile {
                    path: "/t".into(),
                    source: Arc::new(std::io::Error::from(std::io::ErrorKind::NotFound)),
                },
                "token_file",
                true,
                Reason::CredentialsMissing,
            ),
            (
                incomplete(ENV_ROLE_ARN, [ENV_OIDC_TOKEN_FILE]),
                "incomplete_config",
                false,
                Reason::CredentialsMissing,
            ),
        ];
        for (err, category, retryable, reason) in table {
            assert_eq!(err.category(), *category, "{err}");
            assert!(IdentityErrorKind::ALL.contains(&err.kind()));
            assert_eq!(err.is_retryable(), *retryable, "{err}");
            assert_eq!(err.reason(), *reason, "{err}");
        }
    }

    /// STS and CAMS answers go through one classification: the same status and code mean the
    /// same to both (STS only tells throttling and failures on its side from refusals).
    #[test]
    fn sts_answers_are_classified_like_cams_answers() {
        let cases: &[(u16, Option<&str>)] = &[
            (400, Some("Throttling.User")),
            (503, Some("Throttling")),
            (429, None),
            (400, Some("ServiceUnavailable")),
            (500, Some("InternalError")),
            (502, Some("InvalidParameter")),
            (403, Some("Forbidden.RAM")),
            (400, Some("InvalidTimeStamp.Expired")),
            (404, None),
        ];
        for &(http_status, code) in cases {
            let sts = IdentityError::AssumeRole {
                role_arn: "r".into(),
                http_status,
                code: code.map(str::to_owned),
                message: None,
                request_id: None,
            };
            let cams = crate::cams::test_errors::gateway(http_status, code);
            assert_eq!(
                sts.kind(),
                IdentityErrorKind::of_sts(cams.kind()),
                "{http_status} {code:?}"
            );
        }
    }

    /// A server that answers every request with `status` and the JSON `body`.
    async fn answering(status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the whole request (headers and form body) before answering.
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 {status} Answer\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        url
    }

    /// The exchange with STS is the one CAMS calls use: a throttling code STS answers with is
    /// read as throttling, retried, and reported as `Throttled`.
    #[tokio::test]
    async fn sts_throttling_is_read_through_the_shared_exchange() {
        let dir = tempfile::tempdir().expect("dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "oidc-token-for-the-test").expect("token");
        let mut config = RrsaConfig::new(
            "acs:ram::1:role/r",
            "acs:ram::1:oidc-provider/p",
            &token_file,
        );
        config.sts_endpoint = answering(
            400,
            r#"{"RequestId":"R-sts","Code":"Throttling.User","Message":"too fast for oidc-token-for-the-test"}"#,
        )
        .await;
        let err = RrsaProvider::new(config)
            .expect("valid")
            .credentials()
            .await
            .expect_err("throttled");
        assert_eq!(err.kind(), IdentityErrorKind::StsThrottled, "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.reason(), Reason::Throttled);
        assert_eq!(err.request_id(), Some("R-sts"));
        assert!(
            !err.to_string().contains("oidc-token-for-the-test"),
            "{err}"
        );
    }

    #[test]
    fn config_validation_names_the_variable() {
        let good = RrsaConfig::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/t");
        good.validate().expect("valid");
        let mut bad = good.clone();
        bad.role_session_name = "has space".into();
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains(ENV_ROLE_SESSION_NAME), "{err}");
        let mut bad = good.clone();
        bad.sts_endpoint = "ftp://sts/".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains(ENV_STS_ENDPOINT)
        );
        let mut bad = good;
        bad.duration = Duration::from_secs(60);
        assert!(bad.validate().is_err());
    }
}
