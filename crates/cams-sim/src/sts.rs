//! Security Token Service (STS), API version `2015-04-01`: `AssumeRoleWithOIDC`, the exchange
//! behind RRSA (RAM Roles for Service Accounts) on ACK.
//!
//! A pod presents the OIDC token that kubelet mounted for its ServiceAccount, together with the
//! ARN of the RAM role to assume and the ARN of the cluster's OIDC identity provider. STS answers
//! with temporary credentials: an AccessKey ID (`STS.` prefix), its secret, a `SecurityToken` and
//! an `Expiration`. The call is anonymous: the OIDC token is the proof of identity, no AccessKey
//! signs the request.
//!
//! The simulator checks the parameters the way STS does, compares the token, the role ARN and the
//! provider ARN with its [`StsConfig`], and registers each issued key as an STS key of its own,
//! so that CAMS calls signed with it are accepted until `Expiration` and refused with
//! `InvalidSecurityToken.Expired` afterwards. Issued keys are generated from the simulator's
//! seed.

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};

use crate::config::{AccessKeySeed, StsConfig};
use crate::params::{ApiError, Params};
use crate::protocol::{
    DEFAULT_DURATION_SECONDS, MAX_OIDC_TOKEN_CHARS, MIN_DURATION_SECONDS, codes,
};
use crate::state::State;
/// How long after its expiry an issued key is forgotten (until then, calls with it are refused
/// as expired rather than unknown).
const ISSUED_KEY_RETENTION: SignedDuration = SignedDuration::from_hours(24);

fn gateway(http_status: u16, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::Gateway {
        http_status,
        code: code.to_owned(),
        message: message.into(),
    }
}

fn required<'a>(params: &Params<'a>, name: &str) -> Result<&'a str, ApiError> {
    params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        gateway(
            400,
            codes::MISSING_PARAMETER,
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    })
}

/// `RoleSessionName`: 2 to 64 characters of letters, digits, `.`, `@`, `-` and `_`.
fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'))
}

fn random_text(state: &mut State, len: usize) -> String {
    (&mut state.id_rng)
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `acs:ram::ACCOUNT:role/NAME` becomes `acs:ram::ACCOUNT:assumed-role/NAME/SESSION`.
fn assumed_role_arn(role_arn: &str, session: &str) -> String {
    let assumed = role_arn.replacen(":role/", ":assumed-role/", 1);
    format!("{assumed}/{session}")
}

/// `AssumeRoleWithOIDC`: checks the request's form, then whether the [`StsConfig`] trusts it,
/// then issues and registers a temporary key.
pub(crate) fn assume_role_with_oidc(
    state: &mut State,
    params: &Params<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let request = OidcRequest::read(params)?;
    let duration = requested_duration(params, state.sts.max_session_duration_seconds)?;
    check_trust(&state.sts, &request)?;
    let lifetime = state.sts.credential_ttl_seconds.unwrap_or(duration);
    let issued = issue_key(state, lifetime);

    let mut out = Map::new();
    out.insert(
        "Credentials".into(),
        json!({
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.secret,
            "SecurityToken": issued.security_token,
            "Expiration": issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }),
    );
    out.insert(
        "AssumedRoleUser".into(),
        json!({
            "AssumedRoleId": format!("{}:{}", issued.role_id, request.session),
            "Arn": assumed_role_arn(request.role_arn, request.session),
        }),
    );
    out.insert(
        "OIDCTokenInfo".into(),
        json!({
            "Issuer": "https://oidc.cams-simulator.invalid",
            "Subject": "system:serviceaccount:simulated:simulated",
            "ClientIds": "sts.aliyuncs.com",
        }),
    );
    Ok(out)
}

/// The parameters of `AssumeRoleWithOIDC` that say who asks for what, checked for form.
struct OidcRequest<'a> {
    provider_arn: &'a str,
    role_arn: &'a str,
    session: &'a str,
    token: &'a str,
}

impl<'a> OidcRequest<'a> {
    fn read(params: &Params<'a>) -> Result<Self, ApiError> {
        let provider_arn = required(params, "OIDCProviderArn")?;
        let role_arn = required(params, "RoleArn")?;
        let session = required(params, "RoleSessionName")?;
        let token = params.get("OIDCToken").unwrap_or_default();
        if token.is_empty() {
            return Err(gateway(
                401,
                codes::OIDC_TOKEN_INVALID,
                "The OIDCToken can not empty.",
            ));
        }
        if token.chars().count() > MAX_OIDC_TOKEN_CHARS {
            return Err(gateway(
                401,
                codes::OIDC_TOKEN_INVALID,
                format!("The OIDCToken must be at most {MAX_OIDC_TOKEN_CHARS} characters."),
            ));
        }
        if !valid_session_name(session) {
            return Err(gateway(
                400,
                codes::INVALID_ROLE_SESSION_NAME,
                "The parameter RoleSessionName is wrongly formed: 2 to 64 characters of letters, digits, '.', '@', '-' and '_'.",
            ));
        }
        Ok(OidcRequest {
            provider_arn,
            role_arn,
            session,
            token,
        })
    }
}

/// `DurationSeconds`: absent means the default; otherwise from the minimum to the role's
/// maximum session duration.
fn requested_duration(params: &Params<'_>, max: u64) -> Result<u64, ApiError> {
    match params.get("DurationSeconds") {
        None | Some("") => Ok(DEFAULT_DURATION_SECONDS),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|d| (MIN_DURATION_SECONDS..=max).contains(d))
            .ok_or_else(|| {
                gateway(
                    400,
                    codes::INVALID_DURATION_SECONDS,
                    format!(
                        "The Min/Max value of DurationSeconds is {MIN_DURATION_SECONDS}s/{max}s."
                    ),
                )
            }),
    }
}

/// Whether STS trusts the request: the provider, then the token, then the role, in the order
/// STS reports them.
fn check_trust(config: &StsConfig, request: &OidcRequest<'_>) -> Result<(), ApiError> {
    if config
        .oidc_provider_arn
        .as_deref()
        .is_some_and(|want| want != request.provider_arn)
    {
        return Err(gateway(
            401,
            codes::AUTHENTICATION_FAIL_NO_PERMISSION,
            "No such OIDC Provider registered.",
        ));
    }
    if config
        .expired_oidc_tokens
        .iter()
        .any(|t| t.expose() == request.token)
    {
        return Err(gateway(
            401,
            codes::OIDC_TOKEN_EXPIRED,
            "This JsonWebToken is expired.",
        ));
    }
    if config
        .oidc_tokens
        .as_ref()
        .is_some_and(|accepted| !accepted.iter().any(|t| t.expose() == request.token))
    {
        return Err(gateway(
            401,
            codes::OIDC_TOKEN_INVALID,
            "OIDC token validate failed: the token is not one the identity provider issued.",
        ));
    }
    if config
        .role_arn
        .as_deref()
        .is_some_and(|want| want != request.role_arn)
    {
        return Err(gateway(
            404,
            codes::ENTITY_NOT_EXIST_ROLE,
            format!("The role not exists: {}.", request.role_arn),
        ));
    }
    Ok(())
}

/// A temporary key STS issued.
struct IssuedKey {
    access_key_id: String,
    secret: String,
    security_token: String,
    expiration: Timestamp,
    role_id: u64,
}

/// Generates a key that lives `lifetime` seconds and registers it as an STS key of the
/// simulator's own, so CAMS calls signed with it are accepted until it expires.
fn issue_key(state: &mut State, lifetime: u64) -> IssuedKey {
    let now = state.now();
    // Expiration is reported to the second; the key stops working at that very second.
    let issued_at = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let lifetime = SignedDuration::from_secs(i64::try_from(lifetime).unwrap_or(i64::MAX / 4));
    let expiration = issued_at.checked_add(lifetime).unwrap_or(Timestamp::MAX);
    let issued = IssuedKey {
        access_key_id: format!("STS.{}", random_text(state, 24)),
        secret: random_text(state, 40),
        security_token: format!("CAIS{}", random_text(state, 180)),
        expiration,
        role_id: state.id_rng.random_range(10_u64.pow(17)..10_u64.pow(18)),
    };
    state.forget_expired_issued_keys(now);
    state.keys.insert(
        issued.access_key_id.clone(),
        AccessKeySeed::sts(
            issued.access_key_id.as_str(),
            issued.secret.as_str(),
            issued.security_token.as_str(),
        )
        .expires_at(expiration),
    );
    state
        .issued
        .by_expiry
        .push_back((expiration, issued.access_key_id.clone()));
    issued
}

impl State {
    /// Forgets issued keys that expired more than a day ago (by the simulator's clock).
    fn forget_expired_issued_keys(&mut self, now: Timestamp) {
        let horizon = now.checked_sub(ISSUED_KEY_RETENTION).unwrap_or(now);
        while let Some((expiry, _)) = self.issued.by_expiry.front() {
            if *expiry >= horizon {
                break;
            }
            if let Some((_, id)) = self.issued.by_expiry.pop_front() {
                self.keys.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SimConfig, StsConfig};
    use crate::secret::Secret;
    use crate::state::Clock;

    const ROLE: &str = "acs:ram::1234567890123456:role/cams-operator";
    const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";

    fn state(sts: StsConfig, at: &str) -> State {
        let config = SimConfig {
            sts,
            ..SimConfig::default()
        };
        State::new(config, Clock::Fixed(at.parse().expect("time")))
    }

    fn request(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", "eyJ.token.one"),
            ("RoleSessionName", "cams-operator"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in extra {
            params.retain(|(n, _)| n != name);
            params.push(((*name).to_owned(), (*value).to_owned()));
        }
        params
    }

    fn code(result: Result<Map<String, Value>, ApiError>) -> (u16, String) {
        match result {
            Err(ApiError::Gateway {
                http_status, code, ..
            }) => (http_status, code),
            other => panic!("expected a gateway error, got {other:?}"),
        }
    }

    #[test]
    fn issues_and_registers_a_key_until_expiration() {
        let mut s = state(StsConfig::default(), "2026-11-26T06:00:00.750Z");
        let out = assume_role_with_oidc(&mut s, &Params(&request(&[("DurationSeconds", "900")])))
            .expect("ok");
        let creds = &out["Credentials"];
        assert_eq!(creds["Expiration"], "2026-11-26T06:15:00Z");
        let id = creds["AccessKeyId"].as_str().expect("id");
        assert!(id.starts_with("STS."), "{id}");
        let key = &s.keys[id];
        assert_eq!(key.secret.expose(), creds["AccessKeySecret"]);
        assert_eq!(
            key.security_token.as_ref().map(Secret::expose),
            creds["SecurityToken"].as_str()
        );
        assert_eq!(
            key.expires_at,
            Some("2026-11-26T06:15:00Z".parse().expect("time"))
        );
        assert_eq!(
            out["AssumedRoleUser"]["Arn"],
            "acs:ram::1234567890123456:assumed-role/cams-operator/cams-operator"
        );
    }

    #[test]
    fn duration_defaults_to_an_hour_and_is_bounded_by_the_role() {
        let mut s = state(StsConfig::default(), "2026-11-26T06:00:00Z");
        let out = assume_role_with_oidc(&mut s, &Params(&request(&[]))).expect("ok");
        assert_eq!(out["Credentials"]["Expiration"], "2026-11-26T07:00:00Z");
        for bad in ["899", "3601", "x", "-1"] {
            let got = code(assume_role_with_oidc(
                &mut s,
                &Params(&request(&[("DurationSeconds", bad)])),
            ));
            assert_eq!(
                got,
                (400, codes::INVALID_DURATION_SECONDS.to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn ttl_override_wins_over_the_duration() {
        let sts = StsConfig {
            credential_ttl_seconds: Some(20),
            ..StsConfig::default()
        };
        let mut s = state(sts, "2026-11-26T06:00:00Z");
        let out = assume_role_with_oidc(&mut s, &Params(&request(&[("DurationSeconds", "900")])))
            .expect("ok");
        assert_eq!(out["Credentials"]["Expiration"], "2026-11-26T06:00:20Z");
    }

    #[test]
    fn rejections_use_the_sts_codes() {
        let mut sts = StsConfig {
            role_arn: Some(ROLE.into()),
            oidc_provider_arn: Some(PROVIDER.into()),
            ..StsConfig::default()
        };
        sts.accept_oidc_token("eyJ.token.one");
        sts.expire_oidc_token("eyJ.token.old");
        let mut s = state(sts, "2026-11-26T06:00:00Z");
        type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("OIDCToken", "eyJ.token.old")],
                401,
                codes::OIDC_TOKEN_EXPIRED,
            ),
            (
                &[("OIDCToken", "eyJ.token.two")],
                401,
                codes::OIDC_TOKEN_INVALID,
            ),
            (&[("OIDCToken", "")], 401, codes::OIDC_TOKEN_INVALID),
            (
                &[("OIDCProviderArn", "acs:ram::1:oidc-provider/other")],
                401,
                codes::AUTHENTICATION_FAIL_NO_PERMISSION,
            ),
            (
                &[("RoleArn", "acs:ram::1:role/other")],
                404,
                codes::ENTITY_NOT_EXIST_ROLE,
            ),
            (
                &[("RoleSessionName", "bad name!")],
                400,
                codes::INVALID_ROLE_SESSION_NAME,
            ),
            (&[("RoleArn", "")], 400, codes::MISSING_PARAMETER),
        ];
        for (extra, status, want) in cases {
            let got = code(assume_role_with_oidc(&mut s, &Params(&request(extra))));
            assert_eq!(got, (*status, (*want).to_owned()), "{extra:?}");
        }
        assert!(s.keys.is_empty(), "no key issued on a rejection");
        assume_role_with_oidc(&mut s, &Params(&request(&[]))).expect("the accepted token");
    }

    #[test]
    fn long_expired_issued_keys_are_forgotten() {
        let sts = StsConfig {
            credential_ttl_seconds: Some(60),
            ..StsConfig::default()
        };
        let mut s = state(sts, "2026-11-26T06:00:00Z");
        assume_role_with_oidc(&mut s, &Params(&request(&[]))).expect("ok");
        assert_eq!(s.keys.len(), 1);
        s.clock = Clock::Fixed("2026-11-27T07:00:00Z".parse().expect("time"));
        assume_role_with_oidc(&mut s, &Params(&request(&[]))).expect("ok");
        assert_eq!(
            s.keys.len(),
            1,
            "the day-old key is gone, the new one stays"
        );
    }

    #[test]
    fn config_rules_and_redacted_debug() {
        let config: StsConfig = serde_yaml::from_str(
            "{roleArn: r, oidcTokens: [tok-secret-1], expiredOidcTokens: [tok-secret-2], credentialTtlSeconds: 5}",
        )
        .expect("parses");
        config.validate().expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("tok-secret"), "{debug}");
        let bad = StsConfig {
            max_session_duration_seconds: 100,
            ..StsConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("maxSessionDurationSeconds")
        );
        let bad = StsConfig {
            credential_ttl_seconds: Some(0),
            ..StsConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
