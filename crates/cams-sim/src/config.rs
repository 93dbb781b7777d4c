//! The simulator's seed configuration: access keys, groups, faults and forced codes, read from a
//! YAML or JSON file and from the `sim` command's flags.
//!
//! ```yaml
//! seed: 42
//! accessKeys:
//!   - {id: testid, secret: testsecret}
//!   - {id: STS.tmp, secret: tmpsecret, securityToken: CAIS-token, expiresAt: "2030-01-01T00:00:00Z"}
//! groups:
//!   - {custSpaceId: cams-test, businessNumber: "8613800001234", groupId: EA303TEST, subject: Team chat}
//! faults:
//!   UpdateChatGroup: {throttleRate: 0.1, latencyMs: 50}
//! forcedCodes:
//!   EA303GONE: Forbidden.RAM
//! creationDelayMs: 30000   # AddChatGroup's groups are CREATING for 30 s, then ACTIVE
//! sts:
//!   roleArn: acs:ram::1234567890123456:role/cams-operator
//!   oidcTokens: [eyJhbGciOiJSUzI1NiJ9.sim.token]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

use crate::error::SimError;
use crate::faults::{ActionFaults, ForcedError};
use crate::group::Group;
use crate::protocol::{DEFAULT_DURATION_SECONDS, MAX_SESSION_DURATION_LIMIT, MIN_DURATION_SECONDS};
use crate::secret::Secret;

/// Default number of entries kept in the request log (the oldest are dropped first).
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// One access key the simulator accepts. `Debug` never shows the secret or the token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKeySeed {
    /// AccessKey ID.
    pub id: String,
    /// AccessKey secret.
    #[serde(deserialize_with = "secret")]
    pub secret: Secret,
    /// STS security token: when set, requests must carry exactly this token.
    #[serde(default, deserialize_with = "optional_secret")]
    pub security_token: Option<Secret>,
    /// When the STS token stops working (`InvalidSecurityToken.Expired`), by the simulator's
    /// clock.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl AccessKeySeed {
    /// A permanent key.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        AccessKeySeed {
            id: id.into(),
            secret: Secret::new(secret),
            security_token: None,
            expires_at: None,
        }
    }
    /// An STS key: requests must carry `token`.
    pub fn sts(id: impl Into<String>, secret: impl Into<String>, token: impl Into<String>) -> Self {
        AccessKeySeed {
            security_token: Some(Secret::new(token)),
            ..AccessKeySeed::new(id, secret)
        }
    }
    /// Sets the STS token's expiry.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|v| v.map(Secret::new))
}

/// Everything the simulator starts with. Build it in code ([`super::Simulator::builder`]) or
/// read it from a file ([`SimConfig::from_file`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random choice (faults, generated ids).
    pub seed: u64,
    /// Accepted access keys.
    pub access_keys: Vec<AccessKeySeed>,
    /// Groups that exist at start.
    pub groups: Vec<Group>,
    /// Faults by action name (`UpdateChatGroup`, ...).
    pub faults: BTreeMap<String, ActionFaults>,
    /// Responses forced for every call naming a `GroupId`, by `GroupId`.
    pub forced_codes: BTreeMap<String, ForcedError>,
    /// Most entries kept in the request log.
    pub log_capacity: usize,
    /// How long a group created by `AddChatGroup` is listed `CREATING` before it is `ACTIVE`,
    /// in milliseconds by the simulator's clock. The real creation is asynchronous; 0 (the
    /// default) makes it `ACTIVE` at once.
    pub creation_delay_ms: u64,
    /// The simulated STS (`AssumeRoleWithOIDC`): whom it trusts, how long credentials last.
    pub sts: StsConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            access_keys: Vec::new(),
            groups: Vec::new(),
            faults: BTreeMap::new(),
            forced_codes: BTreeMap::new(),
            log_capacity: DEFAULT_LOG_CAPACITY,
            creation_delay_ms: 0,
            sts: StsConfig::default(),
        }
    }
}

impl SimConfig {
    /// Reads a YAML or JSON file (JSON is read as YAML, of which it is a subset).
    pub fn from_file(path: &Path) -> Result<SimConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_str(&text).map_err(|detail| SimError::ParseConfig {
            path: path.to_owned(),
            detail,
        })
    }

    /// Parses YAML or JSON text and validates it. The error says what is wrong and where.
    pub fn from_yaml_str(text: &str) -> Result<SimConfig, String> {
        let config: SimConfig = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Adds the keys and groups given as `--access-key` and `--group` flags.
    pub fn apply_flags(
        &mut self,
        access_keys: &[String],
        groups: &[String],
    ) -> Result<(), SimError> {
        for flag in access_keys {
            self.access_keys.push(parse_access_key_flag(flag)?);
        }
        for flag in groups {
            self.groups.push(parse_group_flag(flag)?);
        }
        self.validate()
            .map_err(|detail| SimError::InvalidConfig { detail })
    }

    /// Checks every field. The error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        for (index, key) in self.access_keys.iter().enumerate() {
            if key.id.is_empty() {
                return Err(format!("accessKeys[{index}].id must not be empty"));
            }
            if key.secret.expose().is_empty() {
                return Err(format!("accessKeys[{index}].secret must not be empty"));
            }
            if key.expires_at.is_some() && key.security_token.is_none() {
                return Err(format!(
                    "accessKeys[{index}].expiresAt is only allowed with a securityToken"
                ));
            }
        }
        for (index, group) in self.groups.iter().enumerate() {
            group
                .validate()
                .map_err(|detail| format!("groups[{index}]: {detail}"))?;
        }
        for (action, faults) in &self.faults {
            faults
                .validate()
                .map_err(|detail| format!("faults.{action}: {detail}"))?;
        }
        for (group_id, forced) in &self.forced_codes {
            forced
                .validate()
                .map_err(|detail| format!("forcedCodes.{group_id}: {detail}"))?;
        }
        self.sts.validate()?;
        if self.log_capacity == 0 {
            return Err("logCapacity must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Parses `ID:SECRET` or `ID:SECRET:STS_TOKEN`. The error never repeats the value.
pub fn parse_access_key_flag(flag: &str) -> Result<AccessKeySeed, SimError> {
    let mut parts = flag.splitn(3, ':');
    let id = parts.next().unwrap_or_default();
    let secret = parts.next().unwrap_or_default();
    let token = parts.next();
    if id.is_empty() || secret.is_empty() || token.is_some_and(str::is_empty) {
        return Err(SimError::InvalidAccessKeyFlag);
    }
    Ok(match token {
        Some(token) => AccessKeySeed::sts(id, secret, token),
        None => AccessKeySeed::new(id, secret),
    })
}

/// Parses `CUST_SPACE_ID:BUSINESS_NUMBER:GROUP_ID[:SUBJECT]` (the subject may contain `:`).
pub fn parse_group_flag(flag: &str) -> Result<Group, SimError> {
    let mut parts = flag.splitn(4, ':');
    let space = parts.next().unwrap_or_default();
    let number = parts.next().unwrap_or_default();
    let group_id = parts.next().unwrap_or_default();
    let subject = parts.next();
    let invalid = |detail: &str| SimError::InvalidGroupFlag {
        value: flag.to_owned(),
        detail: detail.to_owned(),
    };
    if space.is_empty() || number.is_empty() || group_id.is_empty() {
        return Err(invalid(
            "expected CUST_SPACE_ID:BUSINESS_NUMBER:GROUP_ID[:SUBJECT], none of the first three empty",
        ));
    }
    let mut group = Group::new(space, number, group_id);
    if let Some(subject) = subject.filter(|s| !s.is_empty()) {
        group = group.subject(subject);
    }
    group.validate().map_err(|detail| invalid(&detail))?;
    Ok(group)
}

impl fmt::Display for AccessKeySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if self.security_token.is_some() {
            f.write_str(" (STS)")?;
        }
        Ok(())
    }
}

/// How the simulated STS decides whom to trust. Every field is optional: the default trusts any
/// non-empty token for any role and provider, and issues credentials for the `DurationSeconds`
/// asked for (900 s up to the role's maximum session duration, 3600 s by default).
///
/// `Debug` never shows a token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StsConfig {
    /// When set, `RoleArn` must be exactly this (`EntityNotExist.Role`, HTTP 404, otherwise).
    pub role_arn: Option<String>,
    /// When set, `OIDCProviderArn` must be exactly this (`AuthenticationFail.NoPermission`,
    /// HTTP 401, otherwise).
    pub oidc_provider_arn: Option<String>,
    /// The OIDC tokens accepted. `None` (absent): any non-empty token. An empty list accepts
    /// none. Others get `AuthenticationFail.OIDCToken.Invalid` (HTTP 401).
    #[serde(deserialize_with = "optional_secrets")]
    pub oidc_tokens: Option<Vec<Secret>>,
    /// Tokens answered with `AuthenticationFail.OIDCToken.Expired` (HTTP 401), as STS does for
    /// a token past its `exp` claim. Checked before `oidcTokens`.
    #[serde(deserialize_with = "secrets")]
    pub expired_oidc_tokens: Vec<Secret>,
    /// The role's maximum session duration in seconds (900..=43200, default 3600): the largest
    /// `DurationSeconds` accepted.
    pub max_session_duration_seconds: u64,
    /// Test override: the lifetime of issued credentials in seconds, whatever `DurationSeconds`
    /// asked for (which is still checked). Lets a test see a refresh within seconds.
    pub credential_ttl_seconds: Option<u64>,
}

impl Default for StsConfig {
    fn default() -> Self {
        StsConfig {
            role_arn: None,
            oidc_provider_arn: None,
            oidc_tokens: None,
            expired_oidc_tokens: Vec::new(),
            max_session_duration_seconds: DEFAULT_DURATION_SECONDS,
            credential_ttl_seconds: None,
        }
    }
}

fn secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    Vec::<String>::deserialize(d).map(|v| v.into_iter().map(Secret::new).collect())
}

fn optional_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Secret>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)
        .map(|v| v.map(|v| v.into_iter().map(Secret::new).collect()))
}

impl StsConfig {
    /// Checks every field. The error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.role_arn.as_deref().is_some_and(str::is_empty) {
            return Err("sts.roleArn must not be empty when set".to_owned());
        }
        if self.oidc_provider_arn.as_deref().is_some_and(str::is_empty) {
            return Err("sts.oidcProviderArn must not be empty when set".to_owned());
        }
        let empty = |list: &[Secret]| list.iter().any(|t| t.expose().is_empty());
        if self.oidc_tokens.as_deref().is_some_and(empty) {
            return Err("sts.oidcTokens must not hold an empty token".to_owned());
        }
        if empty(&self.expired_oidc_tokens) {
            return Err("sts.expiredOidcTokens must not hold an empty token".to_owned());
        }
        if !(MIN_DURATION_SECONDS..=MAX_SESSION_DURATION_LIMIT)
            .contains(&self.max_session_duration_seconds)
        {
            return Err(format!(
                "sts.maxSessionDurationSeconds must be in {MIN_DURATION_SECONDS}..={MAX_SESSION_DURATION_LIMIT}"
            ));
        }
        if self.credential_ttl_seconds == Some(0) {
            return Err("sts.credentialTtlSeconds must be at least 1".to_owned());
        }
        Ok(())
    }

    /// Accepts `token` (and, from now on, only the tokens added this way).
    pub fn accept_oidc_token(&mut self, token: impl Into<String>) {
        self.oidc_tokens
            .get_or_insert_with(Vec::new)
            .push(Secret::new(token));
    }

    /// Answers `token` with `AuthenticationFail.OIDCToken.Expired` and stops accepting it.
    pub fn expire_oidc_token(&mut self, token: &str) {
        if let Some(accepted) = &mut self.oidc_tokens {
            accepted.retain(|t| t.expose() != token);
        }
        if !self.expired_oidc_tokens.iter().any(|t| t.expose() == token) {
            self.expired_oidc_tokens.push(Secret::new(token));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example() {
        let config = SimConfig::from_yaml_str(
            r#"
seed: 42
accessKeys:
  - {id: testid, secret: testsecret}
  - {id: STS.tmp, secret: tmpsecret, securityToken: CAIS-token, expiresAt: "2030-01-01T00:00:00Z"}
groups:
  - {custSpaceId: cams-test, businessNumber: "8613800001234", groupId: EA303TEST, subject: Team chat}
faults:
  UpdateChatGroup: {throttleRate: 0.1, latencyMs: 50}
forcedCodes:
  EA303GONE: Forbidden.RAM
creationDelayMs: 30000   # AddChatGroup's groups are CREATING for 30 s, then ACTIVE
"#,
        )
        .expect("valid");
        assert_eq!(config.seed, 42);
        assert_eq!(config.access_keys.len(), 2);
        assert_eq!(
            config.access_keys[1]
                .security_token
                .as_ref()
                .map(Secret::expose),
            Some("CAIS-token")
        );
        assert_eq!(config.groups[0].subject.as_deref(), Some("Team chat"));
        assert_eq!(config.faults["UpdateChatGroup"].latency_ms, 50);
        assert_eq!(config.forced_codes["EA303GONE"].code, "Forbidden.RAM");
        assert_eq!(config.creation_delay_ms, 30_000);
        assert_eq!(SimConfig::default().creation_delay_ms, 0);
        let debug = format!("{config:?}");
        assert!(!debug.contains("testsecret"), "{debug}");
        assert!(!debug.contains("CAIS-token"), "{debug}");
    }

    #[test]
    fn rejects_unknown_fields_and_bad_rates() {
        let err = SimConfig::from_yaml_str("sed: 1").expect_err("typo");
        assert!(err.contains("sed"), "{err}");
        let err =
            SimConfig::from_yaml_str("faults: {ListChatGroup: {dropRate: 2}}").expect_err("rate");
        assert!(err.contains("faults.ListChatGroup"), "{err}");
        let err = SimConfig::from_yaml_str("faults: {AddChatGroup: {lostAnswerRate: 1.5}}")
            .expect_err("rate");
        assert!(
            err.contains("faults.AddChatGroup") && err.contains("lostAnswerRate"),
            "{err}"
        );
        let config = SimConfig::from_yaml_str(
            "faults: {AddChatGroup: {lostAnswerRate: 0.5, script: [{kind: lostAnswer}]}}",
        )
        .expect("valid");
        let faults = &config.faults["AddChatGroup"];
        assert_eq!(faults.lost_answer_rate, 0.5);
        assert_eq!(
            faults.script.front(),
            Some(&crate::faults::Fault::LostAnswer)
        );
    }

    #[test]
    fn access_key_flags() {
        let key = parse_access_key_flag("id:sec").expect("valid");
        assert_eq!(key.id, "id");
        assert!(key.security_token.is_none());
        let key = parse_access_key_flag("id:sec:tok").expect("valid");
        assert_eq!(key.security_token.as_ref().map(Secret::expose), Some("tok"));
        let err = parse_access_key_flag("id-only-hunter2").expect_err("invalid");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(parse_access_key_flag("id:").is_err());
    }

    #[test]
    fn group_flags() {
        let group = parse_group_flag("space:8613800001234:G1:Team: chat").expect("valid");
        assert_eq!(group.subject.as_deref(), Some("Team: chat"));
        assert_eq!(group.group_id, "G1");
        assert!(parse_group_flag("space:861").is_err());
    }
}
