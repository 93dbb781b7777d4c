//! Step 2 of the pipeline: which Alibaba Cloud AccessKey a ChatGroup uses (DESIGN 4.3).
//!
//! Resolution order, first match wins:
//! 1. `spec.credentials.secretRef`: a Secret in the object's own namespace (never another one, so
//!    a user who may create ChatGroups cannot borrow a Secret they cannot read). When it is named
//!    but missing, resolution fails: there is no silent fallback to a different identity.
//! 2. The Secret `cams-credentials` in the object's namespace, when it exists. A default Secret
//!    that exists but is broken (a key missing, an empty value) is an error, not a fallback.
//! 3. The operator's own identity (the `ALIBABA_CLOUD_*` environment, or RRSA), passed in.
//!
//! Key names default to `accessKeyId`, `accessKeySecret` and `securityToken` and can be changed
//! per object in `spec.credentials`; they apply to the named Secret and to the namespace
//! default alike. The security token is optional unless its key is named explicitly. Values
//! are trimmed of surrounding whitespace (a trailing newline from `echo | base64` is a common
//! slip); what is left must be one word of at most [`MAX_VALUE_BYTES`] bytes: AccessKeys and
//! tokens never contain whitespace or control characters, and a value that does (a NUL, a line
//! break inside) or that is far too long is refused here rather than sent, signed, with every
//! request.
//!
//! Everything here is pure: the caller looks the Secrets up. Errors name the Secret, the key
//! and the problem, never a value.

use std::collections::BTreeMap;

use crate::cams::{Credentials, SecretString};
use crate::crd::{
    ChatGroupSpec, CredentialsSpec, DEFAULT_ACCESS_KEY_ID_KEY, DEFAULT_ACCESS_KEY_SECRET_KEY,
    DEFAULT_SECRET_NAME, DEFAULT_SECURITY_TOKEN_KEY,
};
use crate::identity::{ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET};

/// Longest usable value, in bytes (after trimming). AccessKey IDs and secrets are a few dozen
/// characters and STS tokens a few thousand; anything longer is not a credential.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Why a value that is UTF-8 and not empty still cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueProblem {
    /// It has whitespace or a control character (a NUL, a line break) inside.
    InnerSpace,
    /// It is longer than [`MAX_VALUE_BYTES`].
    TooLong,
}

impl std::fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueProblem::InnerSpace => {
                f.write_str("holds whitespace or control characters inside the value")
            }
            ValueProblem::TooLong => write!(f, "is longer than {MAX_VALUE_BYTES} bytes"),
        }
    }
}

/// Names of the keys read from a credentials Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeys {
    /// Key holding the AccessKey ID.
    pub access_key_id: String,
    /// Key holding the AccessKey secret.
    pub access_key_secret: String,
    /// Key holding the optional STS security token.
    pub security_token: String,
    /// True when `spec.credentials.securityTokenKey` names the token key explicitly: the key
    /// must then be present and non-empty.
    pub security_token_required: bool,
}

impl SecretKeys {
    fn from_spec(spec: Option<&CredentialsSpec>) -> Self {
        let pick = |key: Option<&Option<String>>, default: &str| {
            key.and_then(Option::as_deref).unwrap_or(default).to_owned()
        };
        SecretKeys {
            access_key_id: pick(
                spec.map(|s| &s.access_key_id_key),
                DEFAULT_ACCESS_KEY_ID_KEY,
            ),
            access_key_secret: pick(
                spec.map(|s| &s.access_key_secret_key),
                DEFAULT_ACCESS_KEY_SECRET_KEY,
            ),
            security_token: pick(
                spec.map(|s| &s.security_token_key),
                DEFAULT_SECURITY_TOKEN_KEY,
            ),
            security_token_required: spec.is_some_and(|s| s.security_token_key.is_some()),
        }
    }
}

/// Where a ChatGroup's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `spec.credentials.secretRef`: this Secret in the object's namespace, and nothing else.
    SecretRef {
        /// Secret name.
        name: String,
        /// Key names.
        keys: SecretKeys,
    },
    /// The Secret `cams-credentials` in the object's namespace if it exists, else the
    /// operator's own identity.
    NamespaceDefault {
        /// Key names.
        keys: SecretKeys,
    },
    /// The operator's own identity (environment or RRSA).
    Operator,
}

impl CredentialSource {
    /// The first choice a spec asks for: its `secretRef`, or the namespace default chain.
    pub fn from_spec(spec: Option<&CredentialsSpec>) -> Self {
        let keys = SecretKeys::from_spec(spec);
        match spec.and_then(|s| s.secret_ref.as_ref()) {
            Some(secret_ref) => CredentialSource::SecretRef {
                name: secret_ref.name.clone(),
                keys,
            },
            None => CredentialSource::NamespaceDefault { keys },
        }
    }

    /// The Secret key names, unless the source is the operator.
    pub fn keys(&self) -> Option<&SecretKeys> {
        match self {
            CredentialSource::SecretRef { keys, .. }
            | CredentialSource::NamespaceDefault { keys } => Some(keys),
            CredentialSource::Operator => None,
        }
    }

    /// Short description for logs and messages, e.g. ``Secret `team-a` ``.
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::SecretRef { name, .. } => format!("Secret `{name}`"),
            CredentialSource::NamespaceDefault { .. } => {
                format!("Secret `{DEFAULT_SECRET_NAME}`")
            }
            CredentialSource::Operator => "the operator's own identity".to_owned(),
        }
    }
}

/// Why no credentials could be resolved. Never contains a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret named in `spec.credentials.secretRef` does not exist.
    #[error(
        "resolving credentials: Secret `{name}` named in spec.credentials.secretRef was not found in the object's namespace; create it with keys `{access_key_id_key}` and `{access_key_secret_key}` (Secrets in other namespaces cannot be used)"
    )]
    SecretNotFound {
        /// Secret name.
        name: String,
        /// Expected key holding the AccessKey ID.
        access_key_id_key: String,
        /// Expected key holding the AccessKey secret.
        access_key_secret_key: String,
    },
    /// A required key is not in the Secret.
    #[error(
        "resolving credentials: Secret `{secret}` has no key `{key}` (the {what}; the key name is set by {field})"
    )]
    KeyMissing {
        /// Secret name.
        secret: String,
        /// Missing key.
        key: String,
        /// What the key should hold.
        what: &'static str,
        /// Spec field choosing the key name.
        field: &'static str,
    },
    /// A key holds an empty (or whitespace-only) value.
    #[error(
        "resolving credentials: key `{key}` of Secret `{secret}` is empty (it should hold the {what})"
    )]
    EmptyValue {
        /// Secret name.
        secret: String,
        /// Key with the empty value.
        key: String,
        /// What the key should hold.
        what: &'static str,
    },
    /// A key holds bytes that are not UTF-8 text.
    #[error(
        "resolving credentials: key `{key}` of Secret `{secret}` is not UTF-8 text (it should hold the {what})"
    )]
    NotUtf8 {
        /// Secret name.
        secret: String,
        /// Key with the bad value.
        key: String,
        /// What the key should hold.
        what: &'static str,
    },
    /// A key holds text that cannot be a credential.
    #[error(
        "resolving credentials: key `{key}` of Secret `{secret}` {problem} (it should hold the {what}: one word of at most {MAX_VALUE_BYTES} bytes)"
    )]
    InvalidValue {
        /// Secret name.
        secret: String,
        /// Key with the bad value.
        key: String,
        /// What the key should hold.
        what: &'static str,
        /// What is wrong with it.
        problem: ValueProblem,
    },
    /// Nothing in the resolution order yielded credentials.
    #[error(
        "resolving credentials: none found; tried spec.credentials.secretRef (not set), the Secret `{default_secret}` in the object's namespace (not found) and the operator's own identity (neither {ENV_ACCESS_KEY_ID}/{ENV_ACCESS_KEY_SECRET} nor RRSA configured)"
    )]
    NoneFound {
        /// The namespace default Secret name that was looked for.
        default_secret: &'static str,
    },
    /// The operator's own identity (environment AccessKey or RRSA) could not provide
    /// credentials.
    #[error("resolving credentials: the operator's own identity failed: {detail}")]
    OperatorIdentity {
        /// What failed (never a value).
        detail: String,
        /// True when retrying later can help (STS unreachable or throttled).
        retryable: bool,
        /// The condition reason: `CredentialsInvalid` when STS rejected the token or role,
        /// `Throttled` or `CamsUnavailable` for STS trouble, `CredentialsMissing` otherwise.
        reason: crate::crd::Reason,
    },
}

impl CredentialsError {
    /// The condition reason for this failure.
    pub fn reason(&self) -> crate::crd::Reason {
        match self {
            CredentialsError::OperatorIdentity { reason, .. } => *reason,
            _ => crate::crd::Reason::CredentialsMissing,
        }
    }

    /// Bounded label for metrics.
    pub fn category(&self) -> &'static str {
        "credentials_missing"
    }
    /// False except for a transient failure of the operator's identity (STS unreachable or
    /// throttled): otherwise nothing changes until a Secret (or the operator's set-up) does.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CredentialsError::OperatorIdentity {
                retryable: true,
                ..
            }
        )
    }
}

/// The Secrets `spec` depends on, in its namespace: the explicit `secretRef`, or the namespace
/// default `cams-credentials`. The controller watches these and reconciles the object again
/// when one changes.
pub fn secret_names(spec: &ChatGroupSpec) -> Vec<String> {
    match CredentialSource::from_spec(spec.credentials.as_ref()) {
        CredentialSource::SecretRef { name, .. } => vec![name],
        CredentialSource::NamespaceDefault { .. } | CredentialSource::Operator => {
            vec![DEFAULT_SECRET_NAME.to_owned()]
        }
    }
}

/// Credentials together with where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The credentials.
    pub credentials: Credentials,
    /// Their source.
    pub source: CredentialSource,
}

/// Resolves `spec`'s credentials (see the module docs for the order). `secrets` looks a Secret
/// up by name in the object's namespace and returns its `data`; `operator` is the operator's
/// own identity, if it has one.
pub fn resolve<F>(
    spec: &ChatGroupSpec,
    secrets: F,
    operator: Option<&Credentials>,
) -> Result<Credentials, CredentialsError>
where
    F: Fn(&str) -> Option<BTreeMap<String, Vec<u8>>>,
{
    resolve_with_source(spec, secrets, operator).map(|r| r.credentials)
}

/// As [`resolve`], also saying which source was used.
pub fn resolve_with_source<F>(
    spec: &ChatGroupSpec,
    secrets: F,
    operator: Option<&Credentials>,
) -> Result<Resolved, CredentialsError>
where
    F: Fn(&str) -> Option<BTreeMap<String, Vec<u8>>>,
{
    let source = CredentialSource::from_spec(spec.credentials.as_ref());
    match &source {
        CredentialSource::SecretRef { name, keys } => match secrets(name) {
            Some(data) => from_secret(name, keys, &data).map(|credentials| Resolved {
                credentials,
                source: source.clone(),
            }),
            None => Err(CredentialsError::SecretNotFound {
                name: name.clone(),
                access_key_id_key: keys.access_key_id.clone(),
                access_key_secret_key: keys.access_key_secret.clone(),
            }),
        },
        CredentialSource::NamespaceDefault { keys } => match secrets(DEFAULT_SECRET_NAME) {
            Some(data) => {
                from_secret(DEFAULT_SECRET_NAME, keys, &data).map(|credentials| Resolved {
                    credentials,
                    source: source.clone(),
                })
            }
            None => match operator {
                Some(credentials) => Ok(Resolved {
                    credentials: credentials.clone(),
                    source: CredentialSource::Operator,
                }),
                None => Err(CredentialsError::NoneFound {
                    default_secret: DEFAULT_SECRET_NAME,
                }),
            },
        },
        CredentialSource::Operator => operator
            .map(|credentials| Resolved {
                credentials: credentials.clone(),
                source: CredentialSource::Operator,
            })
            .ok_or(CredentialsError::NoneFound {
                default_secret: DEFAULT_SECRET_NAME,
            }),
    }
}

const WHAT_ID: &str = "AccessKey ID";
const WHAT_SECRET: &str = "AccessKey secret";
const WHAT_TOKEN: &str = "STS security token";

fn from_secret(
    secret: &str,
    keys: &SecretKeys,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Credentials, CredentialsError> {
    let read = |key: &str, what: &'static str, field: &'static str, required: bool| {
        let Some(bytes) = data.get(key) else {
            return if required {
                Err(CredentialsError::KeyMissing {
                    secret: secret.to_owned(),
                    key: key.to_owned(),
                    what,
                    field,
                })
            } else {
                Ok(None)
            };
        };
        let text = std::str::from_utf8(bytes).map_err(|_| CredentialsError::NotUtf8 {
            secret: secret.to_owned(),
            key: key.to_owned(),
            what,
        })?;
        let text = text.trim();
        if text.is_empty() {
            return if required {
                Err(CredentialsError::EmptyValue {
                    secret: secret.to_owned(),
                    key: key.to_owned(),
                    what,
                })
            } else {
                Ok(None)
            };
        }
        let problem = if text.len() > MAX_VALUE_BYTES {
            Some(ValueProblem::TooLong)
        } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some(ValueProblem::InnerSpace)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CredentialsError::InvalidValue {
                secret: secret.to_owned(),
                key: key.to_owned(),
                what,
                problem,
            });
        }
        Ok(Some(text.to_owned()))
    };
    let id = read(
        &keys.access_key_id,
        WHAT_ID,
        "spec.credentials.accessKeyIdKey",
        true,
    )?;
    let key_secret = read(
        &keys.access_key_secret,
        WHAT_SECRET,
        "spec.credentials.accessKeySecretKey",
        true,
    )?;
    let token = read(
        &keys.security_token,
        WHAT_TOKEN,
        "spec.credentials.securityTokenKey",
        keys.security_token_required,
    )?;
    match (id, key_secret) {
        (Some(id), Some(key_secret)) => Ok(Credentials {
            access_key_id: id,
            access_key_secret: SecretString::new(key_secret),
            security_token: token.map(SecretString::new),
        }),
        // `read` with `required` never returns `Ok(None)`; report the ID key as missing if it
        // ever did rather than panicking.
        _ => Err(CredentialsError::KeyMissing {
            secret: secret.to_owned(),
            key: keys.access_key_id.clone(),
            what: WHAT_ID,
            field: "spec.credentials.accessKeyIdKey",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatGroup, SecretRef};

    const ID: &str = "LTAI5tFAKEFAKEFAKE";
    const SECRET: &str = "s3cr3t-VALUE-never-shown";
    const TOKEN: &str = "CAIS+token-VALUE";

    fn secret(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    fn good() -> BTreeMap<String, Vec<u8>> {
        secret(&[
            ("accessKeyId", ID.as_bytes()),
            ("accessKeySecret", SECRET.as_bytes()),
        ])
    }

    fn operator() -> Credentials {
        Credentials {
            access_key_id: "LTAIoperator".to_owned(),
            access_key_secret: SecretString::new("operator-SECRET-value"),
            security_token: None,
        }
    }

    fn store(
        entries: Vec<(&'static str, BTreeMap<String, Vec<u8>>)>,
    ) -> impl Fn(&str) -> Option<BTreeMap<String, Vec<u8>>> {
        move |name| {
            entries
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| d.clone())
        }
    }

    fn assert_no_values(err: &CredentialsError) {
        let text = format!("{err} {err:?}");
        for value in [SECRET, TOKEN, "operator-SECRET-value", ID] {
            assert!(!text.contains(value), "{text}");
        }
    }

    #[test]
    fn explicit_secret_ref_is_used() {
        let spec = ChatGroup::test("a").with_secret_ref("team-a").spec;
        let resolved = resolve_with_source(
            &spec,
            store(vec![
                ("team-a", good()),
                (DEFAULT_SECRET_NAME, BTreeMap::new()),
            ]),
            Some(&operator()),
        )
        .expect("resolved");
        assert_eq!(resolved.credentials.access_key_id, ID);
        assert_eq!(resolved.credentials.access_key_secret.expose(), SECRET);
        assert_eq!(resolved.credentials.security_token, None);
        assert!(
            matches!(resolved.source, CredentialSource::SecretRef { ref name, .. } if name == "team-a")
        );
        assert_eq!(secret_names(&spec), ["team-a"]);
    }

    #[test]
    fn missing_explicit_secret_does_not_fall_back() {
        let spec = ChatGroup::test("a").with_secret_ref("team-a").spec;
        let err = resolve(
            &spec,
            store(vec![(DEFAULT_SECRET_NAME, good())]),
            Some(&operator()),
        )
        .expect_err("no fallback");
        assert!(matches!(&err, CredentialsError::SecretNotFound { name, .. } if name == "team-a"));
        assert!(err.to_string().contains("Secret `team-a`"), "{err}");
        assert_no_values(&err);
    }

    #[test]
    fn namespace_default_then_operator() {
        let spec = ChatGroup::test("a").spec;
        assert_eq!(secret_names(&spec), [DEFAULT_SECRET_NAME]);
        let resolved = resolve_with_source(
            &spec,
            store(vec![(DEFAULT_SECRET_NAME, good())]),
            Some(&operator()),
        )
        .expect("default secret");
        assert_eq!(resolved.credentials.access_key_id, ID);
        assert!(matches!(
            resolved.source,
            CredentialSource::NamespaceDefault { .. }
        ));

        let resolved =
            resolve_with_source(&spec, store(vec![]), Some(&operator())).expect("operator");
        assert_eq!(resolved.credentials, operator());
        assert_eq!(resolved.source, CredentialSource::Operator);

        let err = resolve(&spec, store(vec![]), None).expect_err("nothing");
        let text = err.to_string();
        for tried in ["secretRef", DEFAULT_SECRET_NAME, ENV_ACCESS_KEY_ID, "RRSA"] {
            assert!(text.contains(tried), "{text}");
        }
    }

    #[test]
    fn broken_default_secret_is_an_error_not_a_fallback() {
        let spec = ChatGroup::test("a").spec;
        let err = resolve(
            &spec,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[("accessKeyId", ID.as_bytes())]),
            )]),
            Some(&operator()),
        )
        .expect_err("broken default");
        assert!(
            matches!(&err, CredentialsError::KeyMissing { key, .. } if key == "accessKeySecret")
        );
        assert_no_values(&err);
    }

    #[test]
    fn custom_keys_and_token() {
        let spec = ChatGroup::test("a")
            .with_credentials(CredentialsSpec {
                secret_ref: Some(SecretRef {
                    name: "ram-user".to_owned(),
                }),
                access_key_id_key: Some("AK".to_owned()),
                access_key_secret_key: Some("SK".to_owned()),
                security_token_key: Some("STS".to_owned()),
            })
            .spec;
        let data = secret(&[
            ("AK", format!("{ID}\n").as_bytes()),
            ("SK", SECRET.as_bytes()),
            ("STS", TOKEN.as_bytes()),
        ]);
        let creds = resolve(&spec, store(vec![("ram-user", data)]), None).expect("resolved");
        assert_eq!(creds.access_key_id, ID, "value trimmed");
        assert_eq!(
            creds.security_token.as_ref().map(SecretString::expose),
            Some(TOKEN)
        );

        // An explicitly named token key must be present.
        let data = secret(&[("AK", ID.as_bytes()), ("SK", SECRET.as_bytes())]);
        let err = resolve(&spec, store(vec![("ram-user", data)]), None).expect_err("token");
        assert!(
            matches!(&err, CredentialsError::KeyMissing { key, field, .. } if key == "STS" && *field == "spec.credentials.securityTokenKey"),
            "{err:?}"
        );
    }

    #[test]
    fn default_token_key_is_optional_and_read_when_present() {
        let spec = ChatGroup::test("a").spec;
        let mut data = good();
        data.insert("securityToken".to_owned(), Vec::new());
        let creds = resolve(
            &spec,
            store(vec![(DEFAULT_SECRET_NAME, data.clone())]),
            None,
        )
        .expect("empty default token is ignored");
        assert_eq!(creds.security_token, None);
        data.insert("securityToken".to_owned(), TOKEN.as_bytes().to_vec());
        let creds = resolve(&spec, store(vec![(DEFAULT_SECRET_NAME, data)]), None).expect("token");
        assert!(creds.security_token.is_some());
    }

    #[test]
    fn empty_and_non_utf8_values() {
        let spec = ChatGroup::test("a").spec;
        let err = resolve(
            &spec,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[
                    ("accessKeyId", b"  \n"),
                    ("accessKeySecret", SECRET.as_bytes()),
                ]),
            )]),
            None,
        )
        .expect_err("empty");
        assert!(matches!(&err, CredentialsError::EmptyValue { key, .. } if key == "accessKeyId"));
        assert!(err.to_string().contains("is empty"), "{err}");
        assert_no_values(&err);

        let err = resolve(
            &spec,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[
                    ("accessKeyId", ID.as_bytes()),
                    ("accessKeySecret", &[0xff, 0xfe]),
                ]),
            )]),
            None,
        )
        .expect_err("not utf-8");
        assert!(matches!(&err, CredentialsError::NotUtf8 { key, .. } if key == "accessKeySecret"));
        assert!(!err.is_retryable());
        assert_eq!(err.category(), "credentials_missing");
    }

    #[test]
    fn debug_of_credentials_hides_values() {
        let spec = ChatGroup::test("a").spec;
        let mut data = good();
        data.insert("securityToken".to_owned(), TOKEN.as_bytes().to_vec());
        let resolved = resolve_with_source(&spec, store(vec![(DEFAULT_SECRET_NAME, data)]), None)
            .expect("resolved");
        let text = format!("{resolved:?}");
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
    }
}
