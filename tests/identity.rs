//! The operator's own identity: how the environment is read (`OperatorIdentity::from_lookup`),
//! and RRSA end to end against the simulator's STS `AssumeRoleWithOIDC`: caching, refresh on a
//! steered clock, the token file re-read on every refresh, rejections, the fallback to
//! still-valid credentials, single-flight refreshes, CAMS calls signed with the temporary key,
//! and no secret in errors, `Debug` output or logs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use cams_operator::cams::client::{HttpCams, HttpCamsConfig, StampSource};
use cams_operator::cams::{CamsApi, Credentials, GroupKey, UpdateChatGroupRequest};
use cams_operator::identity::{
    ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE,
    ENV_ROLE_ARN, ENV_ROLE_SESSION_NAME, ENV_SECURITY_TOKEN, ENV_STS_ENDPOINT, ENV_STS_REGION,
    ENV_VPC_ENDPOINT_ENABLED, IdentityError, OperatorIdentity, RrsaConfig, RrsaProvider,
};

const ROLE: &str = "acs:ram::1234567890123456:role/cams-operator";
const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee";
const TOKEN_1: &str = "eyJhbGciOiJSUzI1NiJ9.first-token-payload.signature-one";
const TOKEN_2: &str = "eyJhbGciOiJSUzI1NiJ9.second-token-payload.signature-two";
const SPACE: &str = "cams-test";
const NUMBER: &str = "8613800001234";
const GROUP: &str = "EA303TEST";
const ASSUME: &str = "AssumeRoleWithOIDC";

mod env {
    use super::*;
    use std::collections::HashMap;

    fn identity(vars: &[(&str, &str)]) -> Result<OperatorIdentity, IdentityError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OperatorIdentity::from_lookup(|name| map.get(name).cloned())
    }

    fn rrsa_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            (ENV_ROLE_ARN, ROLE),
            (ENV_OIDC_PROVIDER_ARN, PROVIDER),
            (ENV_OIDC_TOKEN_FILE, "/var/run/secrets/ack/token"),
        ]
    }

    fn rrsa_config(vars: &[(&str, &str)]) -> RrsaConfig {
        match identity(vars).expect("valid") {
            OperatorIdentity::Rrsa(provider) => provider.config().clone(),
            other => panic!("expected RRSA, got {other:?}"),
        }
    }

    fn missing(result: Result<OperatorIdentity, IdentityError>) -> (&'static str, Vec<String>) {
        match result {
            Err(IdentityError::IncompleteConfig { missing, set }) => {
                (missing, set.iter().map(|s| (*s).to_owned()).collect())
            }
            other => panic!("expected IncompleteConfig, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn nothing_set_is_no_identity() {
        let none = identity(&[]).expect("valid");
        assert!(matches!(none, OperatorIdentity::None));
        assert_eq!(none.kind(), "none");
        assert!(none.current().await.expect("ok").is_none());
        // Optional RRSA settings alone, and empty values, are no identity either.
        let none = identity(&[
            (ENV_ROLE_SESSION_NAME, "x-session"),
            (ENV_STS_ENDPOINT, "sts.example"),
            (ENV_ACCESS_KEY_ID, ""),
            (ENV_ROLE_ARN, "  "),
        ])
        .expect("valid");
        assert!(matches!(none, OperatorIdentity::None), "{none:?}");
    }

    #[tokio::test]
    async fn environment_access_key_with_and_without_token() {
        let identity_ = identity(&[
            (ENV_ACCESS_KEY_ID, " LTAIoperator "),
            (ENV_ACCESS_KEY_SECRET, "operator-secret-value\n"),
        ])
        .expect("valid");
        assert_eq!(identity_.kind(), "static");
        let creds = identity_.current().await.expect("ok").expect("some");
        assert_eq!(creds.access_key_id, "LTAIoperator");
        assert_eq!(creds.access_key_secret.expose(), "operator-secret-value");
        assert!(creds.security_token.is_none());
        let debug = format!("{identity_:?}");
        assert!(!debug.contains("operator-secret-value"), "{debug}");

        let creds = identity(&[
            (ENV_ACCESS_KEY_ID, "STS.operator"),
            (ENV_ACCESS_KEY_SECRET, "sts-secret"),
            (ENV_SECURITY_TOKEN, "CAIS-operator-token"),
        ])
        .expect("valid")
        .current()
        .await
        .expect("ok")
        .expect("some");
        assert_eq!(
            creds.security_token.as_ref().map(|t| t.expose()),
            Some("CAIS-operator-token")
        );
    }

    #[test]
    fn environment_access_key_comes_before_rrsa() {
        let mut vars = rrsa_vars();
        vars.push((ENV_ACCESS_KEY_ID, "LTAIoperator"));
        vars.push((ENV_ACCESS_KEY_SECRET, "operator-secret"));
        assert!(matches!(
            identity(&vars).expect("valid"),
            OperatorIdentity::Static(_)
        ));
        // A complete key also wins over a half-configured RRSA (which it makes irrelevant).
        let vars = [
            (ENV_ACCESS_KEY_ID, "LTAIoperator"),
            (ENV_ACCESS_KEY_SECRET, "operator-secret"),
            (ENV_ROLE_ARN, ROLE),
        ];
        assert!(matches!(
            identity(&vars).expect("valid"),
            OperatorIdentity::Static(_)
        ));
    }

    #[test]
    fn half_an_access_key_is_an_error_naming_the_missing_variable() {
        let (gone, set) = missing(identity(&[(ENV_ACCESS_KEY_ID, "LTAIoperator")]));
        assert_eq!(gone, ENV_ACCESS_KEY_SECRET);
        assert_eq!(set, [ENV_ACCESS_KEY_ID]);
        let (gone, _) = missing(identity(&[
            (ENV_ACCESS_KEY_SECRET, "operator-secret"),
            (ENV_ACCESS_KEY_ID, ""),
        ]));
        assert_eq!(gone, ENV_ACCESS_KEY_ID);
        let (gone, set) = missing(identity(&[(ENV_SECURITY_TOKEN, "CAIS-alone")]));
        assert_eq!(gone, ENV_ACCESS_KEY_ID);
        assert_eq!(set, [ENV_SECURITY_TOKEN]);
        // A half key is not hidden by a complete RRSA configuration.
        let mut vars = rrsa_vars();
        vars.push((ENV_ACCESS_KEY_ID, "LTAIoperator"));
        assert_eq!(missing(identity(&vars)).0, ENV_ACCESS_KEY_SECRET);
        // The message names the variables and holds no value.
        let err = identity(&[
            (ENV_ACCESS_KEY_SECRET, "operator-secret"),
            (ENV_SECURITY_TOKEN, "CAIS-tok"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(ENV_ACCESS_KEY_ID), "{text}");
        assert!(text.contains(ENV_ACCESS_KEY_SECRET), "{text}");
        assert!(!text.contains("operator-secret") && !text.contains("CAIS-tok"));
        assert_eq!(err.category(), "incomplete_config");
        assert!(!err.is_retryable());
    }

    #[test]
    fn partial_rrsa_is_an_error_naming_the_missing_variable() {
        let all = rrsa_vars();
        for skip in 0..all.len() {
            // Leave one out (absent), then the same one empty.
            let without: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, v)| *v)
                .collect();
            let (gone, set) = missing(identity(&without));
            assert_eq!(gone, all[skip].0);
            assert_eq!(set.len(), 2);
            let mut empty = without.clone();
            empty.push((all[skip].0, ""));
            assert_eq!(missing(identity(&empty)).0, all[skip].0);
            // Only one of the three set: the first missing one is named.
            let (gone, set) = missing(identity(&[all[skip]]));
            assert_eq!(set, [all[skip].0]);
            assert_eq!(gone, if skip == 0 { all[1].0 } else { all[0].0 });
        }
    }

    #[test]
    fn rrsa_settings_and_their_defaults() {
        let config = rrsa_config(&rrsa_vars());
        assert_eq!(config.role_arn, ROLE);
        assert_eq!(config.oidc_provider_arn, PROVIDER);
        assert_eq!(
            config.token_file,
            PathBuf::from("/var/run/secrets/ack/token")
        );
        assert_eq!(config.role_session_name, "cams-operator");
        assert_eq!(config.sts_endpoint, "https://sts.aliyuncs.com/");
        assert_eq!(config.duration, Duration::from_secs(3600));

        let mut vars = rrsa_vars();
        vars.push((ENV_ROLE_SESSION_NAME, "cams-operator@shard-a"));
        vars.push((ENV_STS_ENDPOINT, "sts-vpc.cn-hangzhou.aliyuncs.com"));
        vars.push((ENV_STS_REGION, "ap-southeast-1"));
        let config = rrsa_config(&vars);
        assert_eq!(config.role_session_name, "cams-operator@shard-a");
        assert_eq!(
            config.sts_endpoint,
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );

        let mut vars = rrsa_vars();
        vars.push((ENV_STS_REGION, "ap-southeast-1"));
        vars.push((ENV_VPC_ENDPOINT_ENABLED, "true"));
        assert_eq!(
            rrsa_config(&vars).sts_endpoint,
            "https://sts-vpc.ap-southeast-1.aliyuncs.com/"
        );
    }

    #[test]
    fn invalid_rrsa_settings_name_the_variable() {
        for (name, value) in [
            (ENV_ROLE_SESSION_NAME, "no spaces allowed"),
            (ENV_STS_ENDPOINT, "ftp://sts.example/"),
            (ENV_STS_REGION, "Not A Region"),
            (ENV_VPC_ENDPOINT_ENABLED, "maybe"),
        ] {
            let mut vars = rrsa_vars();
            vars.push((ENV_STS_REGION, "cn-hangzhou"));
            vars.retain(|(n, _)| *n != name);
            vars.push((name, value));
            let err = identity(&vars).unwrap_err();
            assert!(
                matches!(&err, IdentityError::InvalidConfig { variable, .. } if *variable == name),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
            assert!(!err.is_retryable());
        }
    }
}

mod rrsa {
    use super::*;
    use cams_sim::{
        ActionFaults, Fault, Group, RunningSim, ServerError, Simulator, SimulatorBuilder,
    };

    pub const T0: &str = "2026-11-26T06:00:00Z";
    /// Lifetime of the simulator's credentials in these tests: with the default 5-minute margin
    /// capped at a fifth, they are refreshed 200 s before expiry, at T0 + 800 s.
    pub const TTL: u64 = 1000;
    pub const REFRESH_AFTER: i64 = 800;

    /// A clock shared by the provider, the CAMS client and the simulator.
    #[derive(Clone)]
    pub struct TestClock(Arc<Mutex<Timestamp>>);

    impl TestClock {
        pub fn at(text: &str) -> Self {
            TestClock(Arc::new(Mutex::new(text.parse().expect("time"))))
        }
        /// Moves this clock and the simulator's to `T0 + seconds`.
        pub fn set(&self, sim: &RunningSim, seconds: i64) {
            let t0: Timestamp = T0.parse().expect("time");
            let at = t0 + SignedDuration::from_secs(seconds);
            *self.0.lock().unwrap() = at;
            sim.set_time(at);
        }
    }

    impl StampSource for TestClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
        fn nonce(&self) -> String {
            format!("{:032x}", rand::random::<u128>())
        }
    }

    pub struct Fixture {
        pub sim: RunningSim,
        pub clock: TestClock,
        pub token_file: PathBuf,
        pub provider: RrsaProvider,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        /// A simulator trusting `TOKEN_1` for `ROLE` and `PROVIDER`, at T0, with a token file
        /// holding `TOKEN_1`.
        pub async fn start() -> Fixture {
            Self::with(|b| b).await
        }

        pub async fn with(customise: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder) -> Fixture {
            let builder = Simulator::builder()
                .sts_role_arn(ROLE)
                .sts_oidc_provider_arn(PROVIDER)
                .accept_oidc_token(TOKEN_1)
                .sts_credential_ttl(Duration::from_secs(TTL))
                .group(Group::new(SPACE, NUMBER, GROUP).subject("Old subject"))
                .fixed_time(T0.parse().expect("time"));
            let sim = customise(builder).start().await.expect("simulator starts");
            let dir = tempfile::tempdir().expect("temp dir");
            let token_file = dir.path().join("token");
            std::fs::write(&token_file, TOKEN_1).expect("token written");
            let clock = TestClock::at(T0);
            let mut config = RrsaConfig::new(ROLE, PROVIDER, &token_file);
            config.sts_endpoint = sim.url();
            let provider = RrsaProvider::new(config)
                .expect("valid config")
                .with_stamps(clock.clone());
            Fixture {
                sim,
                clock,
                token_file,
                provider,
                _dir: dir,
            }
        }

        pub fn identity(&self) -> OperatorIdentity {
            OperatorIdentity::Rrsa(self.provider.clone())
        }

        pub fn at(&self, seconds: i64) {
            self.clock.set(&self.sim, seconds);
        }

        pub fn assumed(&self) -> u64 {
            self.sim.call_count(ASSUME)
        }

        pub fn cams(&self) -> HttpCams {
            HttpCams::new(HttpCamsConfig::default())
                .expect("client")
                .with_stamps(self.clock.clone())
        }
    }

    pub fn update(subject: &str) -> UpdateChatGroupRequest {
        UpdateChatGroupRequest {
            key: GroupKey {
                cust_space_id: SPACE.into(),
                business_number: NUMBER.into(),
                group_id: GROUP.into(),
            },
            channel_type: None,
            subject: Some(subject.into()),
            description: None,
            profile_picture_file: None,
        }
    }

    fn sts_code(err: &IdentityError) -> (u16, &str) {
        match err {
            IdentityError::AssumeRole {
                http_status,
                code: Some(code),
                ..
            } => (*http_status, code.as_str()),
            other => panic!("expected an STS rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn first_call_assumes_the_role_and_later_calls_reuse_the_cache() {
        let f = Fixture::start().await;
        let identity = f.identity();
        assert_eq!(identity.kind(), "rrsa");
        assert_eq!(f.assumed(), 0, "building the identity calls nobody");

        let first = identity.current().await.expect("ok").expect("some");
        assert!(first.access_key_id.starts_with("STS."), "{first:?}");
        assert!(first.security_token.is_some());
        assert_eq!(f.assumed(), 1);
        assert_eq!(f.sim.code_count(ASSUME, "OK"), 1);
        let expected_expiry: Timestamp = "2026-11-26T06:16:40Z".parse().unwrap();
        assert_eq!(f.provider.cached_expiration(), Some(expected_expiry));

        // Within the validity and before the refresh point: the cache, no STS call.
        let again = identity.current().await.expect("ok").expect("some");
        assert_eq!(again, first);
        f.at(REFRESH_AFTER - 1);
        assert_eq!(identity.current().await.expect("ok").expect("some"), first);
        assert_eq!(f.assumed(), 1);

        // At the refresh point: new credentials, one more STS call.
        f.at(REFRESH_AFTER);
        let second = identity.current().await.expect("ok").expect("some");
        assert_ne!(second.access_key_id, first.access_key_id);
        assert_eq!(f.assumed(), 2);
        assert_eq!(identity.current().await.expect("ok").expect("some"), second);
        assert_eq!(f.assumed(), 2);
    }

    #[tokio::test]
    async fn the_request_carries_the_role_provider_session_and_duration_but_is_not_logged_with_the_token()
     {
        let f = Fixture::start().await;
        f.provider.credentials().await.expect("ok");
        let log = f.sim.requests_for(ASSUME);
        assert_eq!(log.len(), 1);
        let entry = &log[0];
        assert_eq!(entry.method, "POST");
        assert_eq!(entry.version.as_deref(), Some("2015-04-01"));
        assert_eq!(entry.access_key_id, None, "anonymous: no AccessKey");
        let param = |name: &str| entry.params.get(name).map(String::as_str);
        assert_eq!(param("RoleArn"), Some(ROLE));
        assert_eq!(param("OIDCProviderArn"), Some(PROVIDER));
        assert_eq!(param("RoleSessionName"), Some("cams-operator"));
        assert_eq!(param("DurationSeconds"), Some("3600"));
        assert_eq!(param("Format"), Some("JSON"));
        assert_eq!(param("Timestamp"), Some("2026-11-26T06:00:00Z"));
        assert_eq!(param("OIDCToken"), None);
        let stats = serde_json::to_string(&f.sim.stats()).expect("json");
        assert!(!stats.contains(TOKEN_1), "{stats}");
    }

    #[tokio::test]
    async fn the_token_file_is_read_again_on_every_refresh() {
        let f = Fixture::start().await;
        let first = f.provider.credentials().await.expect("ok");

        // kubelet rotates the token; STS now only trusts the new one.
        std::fs::write(&f.token_file, format!("{TOKEN_2}\n")).expect("rotated");
        f.sim.accept_only_oidc_tokens(&[TOKEN_2]);
        // Before the refresh point nothing is read or called.
        f.at(REFRESH_AFTER - 1);
        assert_eq!(f.provider.credentials().await.expect("ok"), first);
        assert_eq!(f.assumed(), 1);

        f.at(REFRESH_AFTER);
        let second = f
            .provider
            .credentials()
            .await
            .expect("refreshed with the new token");
        assert_ne!(second.access_key_id, first.access_key_id);
        assert_eq!(f.sim.code_count(ASSUME, "OK"), 2);
        assert_eq!(
            f.sim
                .code_count(ASSUME, "AuthenticationFail.OIDCToken.Invalid"),
            0
        );

        // A token file that disappears is reported (retryable: kubelet may be rewriting it),
        // with no STS call, once the cached credentials have expired.
        std::fs::remove_file(&f.token_file).expect("removed");
        f.at(REFRESH_AFTER + TTL as i64 + 1);
        let err = f.provider.credentials().await.unwrap_err();
        assert!(
            matches!(err, IdentityError::ReadTokenFile { .. }),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert!(err.to_string().contains("token"), "{err}");
        assert_eq!(f.assumed(), 2);
    }

    #[tokio::test]
    async fn an_expired_token_is_a_clear_terminal_error() {
        let f = Fixture::with(|b| b.expired_oidc_token(TOKEN_1)).await;
        let err = f.identity().current().await.unwrap_err();
        assert_eq!(
            sts_code(&err),
            (401, "AuthenticationFail.OIDCToken.Expired")
        );
        assert!(!err.is_retryable());
        assert_eq!(err.category(), "sts_rejected");
        assert_eq!(err.reason(), cams_operator::crd::Reason::CredentialsInvalid);
        let text = err.to_string();
        assert!(
            text.contains("AuthenticationFail.OIDCToken.Expired"),
            "{text}"
        );
        assert!(text.contains(ROLE), "{text}");
        let request_id = err.request_id().expect("RequestId");
        assert!(text.contains(request_id), "{text}");
        assert!(!text.contains(TOKEN_1) && !format!("{err:?}").contains(TOKEN_1));
    }

    #[tokio::test]
    async fn rejected_token_role_and_provider_get_the_sts_codes() {
        type Change = fn(&mut RrsaConfig);
        let cases: [(Change, u16, &str); 3] = [
            (
                |c| c.role_arn = "acs:ram::1234567890123456:role/other".into(),
                404,
                "EntityNotExist.Role",
            ),
            (
                |c| c.oidc_provider_arn = "acs:ram::1:oidc-provider/other".into(),
                401,
                "AuthenticationFail.NoPermission",
            ),
            (|_| {}, 401, "AuthenticationFail.OIDCToken.Invalid"),
        ];
        for (change, status, code) in cases {
            let f = Fixture::start().await;
            if code == "AuthenticationFail.OIDCToken.Invalid" {
                f.sim.accept_only_oidc_tokens(&["another-token-entirely"]);
            }
            let mut config = f.provider.config().clone();
            change(&mut config);
            let provider = RrsaProvider::new(config)
                .expect("valid")
                .with_stamps(f.clock.clone());
            let err = provider.credentials().await.unwrap_err();
            assert_eq!(sts_code(&err), (status, code));
            assert!(!err.is_retryable(), "{err}");
        }
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_valid_credentials_then_reports_once_they_expire() {
        let f = Fixture::start().await;
        let first = f.provider.credentials().await.expect("ok");
        f.sim
            .set_faults(ASSUME, {
                let mut faults = ActionFaults::none();
                faults.script.push_back(Fault::ServerError {
                    error: ServerError::ServiceUnavailable,
                });
                faults
            })
            .expect("faults");

        // Due for refresh, STS fails: the still-valid credentials are used.
        f.at(REFRESH_AFTER + 50);
        assert_eq!(f.provider.credentials().await.expect("fallback"), first);
        assert_eq!(f.sim.code_count(ASSUME, "ServiceUnavailable"), 1);
        // No new attempt within the retry interval.
        f.at(REFRESH_AFTER + 55);
        assert_eq!(f.provider.credentials().await.expect("fallback"), first);
        assert_eq!(f.assumed(), 2);
        // After it, the refresh is retried and succeeds.
        f.at(REFRESH_AFTER + 61);
        let second = f.provider.credentials().await.expect("refreshed");
        assert_ne!(second.access_key_id, first.access_key_id);
        assert_eq!(f.assumed(), 3);

        // The token expires; the cached credentials carry on until their own expiry...
        f.sim.expire_oidc_token(TOKEN_1);
        let second_expiry = REFRESH_AFTER + 61 + TTL as i64;
        f.at(second_expiry - 10);
        assert_eq!(f.provider.credentials().await.expect("fallback"), second);
        // ...after which the error is returned, and repeated without calling STS again until
        // the retry interval has passed.
        f.at(second_expiry);
        let err = f.provider.credentials().await.unwrap_err();
        assert_eq!(
            sts_code(&err),
            (401, "AuthenticationFail.OIDCToken.Expired")
        );
        let calls = f.assumed();
        f.at(second_expiry + 5);
        let again = f.provider.credentials().await.unwrap_err();
        assert_eq!(
            sts_code(&again),
            (401, "AuthenticationFail.OIDCToken.Expired")
        );
        assert_eq!(f.assumed(), calls);
        f.at(second_expiry + 11);
        f.provider.credentials().await.unwrap_err();
        assert_eq!(f.assumed(), calls + 1);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        // STS answers slowly, so that every caller arrives while the first call is in flight.
        let f = Fixture::with(|b| {
            b.faults(ASSUME, {
                let mut faults = ActionFaults::none();
                faults.latency_ms = 200;
                faults
            })
        })
        .await;
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let identity = f.identity();
                tokio::spawn(async move { identity.current().await })
            })
            .collect();
        let mut seen: Vec<Credentials> = Vec::new();
        for call in calls {
            seen.push(call.await.expect("joined").expect("ok").expect("some"));
        }
        assert_eq!(f.assumed(), 1);
        assert!(seen.windows(2).all(|w| w[0] == w[1]));

        // A refresh in flight does not hold up callers while the cache is still valid. The
        // token file becomes a FIFO: the refresh blocks reading it, holding the refresh lock,
        // until this test writes the token (and opening the FIFO for writing returns only once
        // the refresh has opened it for reading).
        std::fs::remove_file(&f.token_file).expect("removed");
        let status = std::process::Command::new("mkfifo")
            .arg(&f.token_file)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        f.at(REFRESH_AFTER);
        let provider = f.provider.clone();
        let refreshing = tokio::spawn(async move { provider.credentials().await });
        let (opened, open_result) = std::sync::mpsc::channel();
        let path = f.token_file.clone();
        std::thread::spawn(move || opened.send(std::fs::File::create(path)));
        let waited =
            tokio::task::spawn_blocking(move || open_result.recv_timeout(Duration::from_secs(10)))
                .await
                .expect("joined");
        let Ok(writer) = waited else {
            // Unblock the writer thread before failing.
            let _reader = std::fs::File::open(&f.token_file);
            panic!("the refresh never read the token file");
        };
        let writer = writer.expect("token file opened for writing");
        let meanwhile = tokio::time::timeout(Duration::from_secs(5), f.provider.credentials())
            .await
            .expect("not held up by the refresh in flight")
            .expect("ok");
        assert_eq!(meanwhile, seen[0]);
        {
            use std::io::Write as _;
            let mut writer = writer;
            writer.write_all(TOKEN_1.as_bytes()).expect("token written");
        }
        let refreshed = refreshing.await.expect("joined").expect("ok");
        assert_ne!(refreshed, seen[0]);
        assert_eq!(f.assumed(), 2);
    }

    #[tokio::test]
    async fn the_temporary_key_signs_cams_calls_until_it_expires() {
        let f = Fixture::start().await;
        let cams = f.cams();
        let creds = f.identity().current().await.expect("ok").expect("some");
        let response = cams
            .update_chat_group(
                &cams_operator::cams::Endpoint::from_url(&f.sim.url()),
                &creds,
                &update("Signed with RRSA"),
            )
            .await
            .expect("accepted");
        assert_eq!(response.result, Some(1));
        let group = f.sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert_eq!(group.subject.as_deref(), Some("Signed with RRSA"));
        let log = f.sim.requests_for("UpdateChatGroup");
        assert_eq!(
            log[0].access_key_id.as_deref(),
            Some(creds.access_key_id.as_str())
        );

        // The same key after its Expiration: refused as expired.
        f.at(TTL as i64);
        let err = cams
            .update_chat_group(
                &cams_operator::cams::Endpoint::from_url(&f.sim.url()),
                &creds,
                &update("Too late"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidSecurityToken.Expired"));
        // The provider, asked now, has fresh credentials that work.
        let fresh = f.provider.credentials().await.expect("ok");
        cams.update_chat_group(
            &cams_operator::cams::Endpoint::from_url(&f.sim.url()),
            &fresh,
            &update("Fresh key"),
        )
        .await
        .expect("accepted");
    }

    #[tokio::test]
    async fn a_clock_far_from_sts_is_refused() {
        let f = Fixture::start().await;
        let provider = RrsaProvider::new(f.provider.config().clone())
            .expect("valid")
            .with_stamps(TestClock::at("2026-11-26T07:00:00Z"));
        let err = provider.credentials().await.unwrap_err();
        assert_eq!(sts_code(&err), (400, "InvalidTimeStamp.Expired"));
    }

    #[tokio::test]
    async fn an_unreachable_sts_is_a_retryable_transport_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, TOKEN_1).unwrap();
        let mut config = RrsaConfig::new(ROLE, PROVIDER, &token_file);
        config.sts_endpoint = format!("http://127.0.0.1:{port}/");
        let err = RrsaProvider::new(config)
            .unwrap()
            .credentials()
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::Transport { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(err.category(), "transport");
        assert!(!err.to_string().contains(TOKEN_1));
    }
}

mod no_leak {
    use super::rrsa::*;
    use super::*;
    use std::io::Write;
    use std::sync::OnceLock;

    /// Everything every log line wrote, at TRACE, for the whole process.
    fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
        static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
        BUFFER.get_or_init(|| {
            let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
            let sink = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .try_init()
                .expect("no other global subscriber in this test binary");
            buffer
        })
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn encode(value: &str) -> String {
        cams_operator::cams::sign::pop_encode(value)
    }

    #[tokio::test]
    async fn no_token_secret_or_security_token_in_logs_errors_or_debug() {
        let buffer = captured();
        let f = Fixture::start().await;
        let mut texts: Vec<String> = Vec::new();

        // Success, a CAMS call with the temporary key, a refresh.
        let first = f.provider.credentials().await.expect("ok");
        f.cams()
            .update_chat_group(
                &cams_operator::cams::Endpoint::from_url(&f.sim.url()),
                &first,
                &update("No leak"),
            )
            .await
            .expect("accepted");
        f.at(REFRESH_AFTER);
        let second = f.provider.credentials().await.expect("ok");
        texts.push(format!("{:?}", f.identity()));
        texts.push(format!("{first:?} {second:?}"));

        // A rejected token, then an expired one once the cache has expired.
        std::fs::write(&f.token_file, TOKEN_2).unwrap();
        f.at(REFRESH_AFTER + TTL as i64);
        let err = f.provider.credentials().await.unwrap_err();
        texts.push(format!("{err} {err:?}"));
        f.sim.expire_oidc_token(TOKEN_2);
        f.at(REFRESH_AFTER + TTL as i64 + 20);
        let err = f.provider.credentials().await.unwrap_err();
        assert_eq!(err.code(), Some("AuthenticationFail.OIDCToken.Expired"));
        texts.push(format!("{err} {err:?}"));
        texts.push(serde_json::to_string(&f.sim.stats()).unwrap());

        let logs = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
        assert!(
            logs.contains("RRSA: assumed the role"),
            "the capture works: {logs}"
        );
        texts.push(logs);
        let mut secrets: Vec<String> = vec![TOKEN_1.into(), TOKEN_2.into()];
        for creds in [&first, &second] {
            secrets.push(creds.access_key_secret.expose().to_owned());
            secrets.push(creds.security_token.as_ref().unwrap().expose().to_owned());
        }
        for secret in &secrets {
            for form in [secret.clone(), encode(secret), encode(&encode(secret))] {
                for text in &texts {
                    assert!(!text.contains(&form), "{form:?} leaked into: {text}");
                }
            }
        }
    }
}
