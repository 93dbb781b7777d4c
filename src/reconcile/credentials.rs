//! Step 2 of the pipeline: which Alibaba Cloud AccessKey a ChatGroup uses.
//!
//! Resolution order, first match wins:
//! 1. `spec.credentials.secretRef`: a Secret in the object's own namespace (never another one, so
//!    a user who may create ChatGroups cannot borrow a Secret they cannot read). When it is named
//!    but missing, resolution fails: there is no silent fallback to a different identity.
//! 2. The Secret `cams-credentials` in the object's namespace, when it exists. A default Secret
//!    that exists but is broken (a key missing, an empty value) is an error, not a fallback.
//! 3. The operator's own identity (the `ALIBABA_CLOUD_*` environment, or RRSA), passed in, and
//!    only for objects in a namespace [`IdentityNamespaces`] allows (`--identity-namespaces`; by
//!    default the namespace the operator runs in). Anyone who may edit ChatGroups in some
//!    namespace could otherwise make the operator act with its own identity there; a namespace
//!    that is not allowed gets [`CredentialsError::IdentityNotAllowed`], decided before the
//!    identity is asked for credentials, so no STS call is made for it either.
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
//! Everything here is pure: the caller looks the Secrets up and, when [`decide`] says so, asks
//! the operator's identity for its credentials. Errors name the Secret, the key and the
//! problem, never a value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::cams::{Credentials, SecretString};
use crate::crd::{
    ChatGroupSpec, CredentialsSpec, DEFAULT_ACCESS_KEY_ID_KEY, DEFAULT_ACCESS_KEY_SECRET_KEY,
    DEFAULT_SECRET_NAME, DEFAULT_SECURITY_TOKEN_KEY,
};
use crate::identity::{ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET};
use crate::reconcile::names::{MAX_NAMESPACE_CHARS, is_dns_label};

/// The `cams-operator run` flag naming the namespaces whose ChatGroups may use the operator's
/// own identity.
pub const IDENTITY_NAMESPACES_FLAG: &str = "--identity-namespaces";
/// The environment twin of [`IDENTITY_NAMESPACES_FLAG`] (comma-separated).
pub const IDENTITY_NAMESPACES_ENV: &str = "CAMS_OPERATOR_IDENTITY_NAMESPACES";
/// The Helm chart value that sets [`IDENTITY_NAMESPACES_FLAG`].
pub const IDENTITY_NAMESPACES_VALUE: &str = "credentials.namespaces";
/// The value of [`IDENTITY_NAMESPACES_FLAG`] that allows every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// The namespaces whose ChatGroups may fall back to the operator's own identity when no
/// Secret applies ([`IDENTITY_NAMESPACES_FLAG`]). Secrets work in every namespace regardless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityNamespaces {
    /// Every namespace: the flag's value is exactly [`ALL_NAMESPACES`].
    All,
    /// Only these namespaces; none when empty.
    Only(BTreeSet<String>),
}

impl Default for IdentityNamespaces {
    /// No namespace: nothing may use the operator's identity until it is allowed explicitly.
    fn default() -> Self {
        IdentityNamespaces::none()
    }
}

impl IdentityNamespaces {
    /// No namespace at all.
    pub fn none() -> Self {
        IdentityNamespaces::Only(BTreeSet::new())
    }

    /// Exactly `namespaces` (not validated: [`from_flag`](Self::from_flag) is for user input).
    pub fn only<I, S>(namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        IdentityNamespaces::Only(namespaces.into_iter().map(Into::into).collect())
    }

    /// The setting for the values of [`IDENTITY_NAMESPACES_FLAG`] (already split at commas):
    /// none given means only `home`, the namespace the operator runs in; [`ALL_NAMESPACES`]
    /// alone means every namespace; otherwise each value must be a namespace name (a DNS
    /// label). Surrounding whitespace is ignored and a name given twice counts once.
    pub fn from_flag(values: &[String], home: &str) -> Result<Self, IdentityNamespacesError> {
        let values: Vec<&str> = values.iter().map(|v| v.trim()).collect();
        if values.is_empty() {
            return Ok(IdentityNamespaces::only([home]));
        }
        if values.contains(&ALL_NAMESPACES) {
            let others: Vec<String> = values
                .iter()
                .filter(|v| **v != ALL_NAMESPACES)
                .map(|v| (*v).to_owned())
                .collect();
            return if values.len() == 1 {
                Ok(IdentityNamespaces::All)
            } else {
                Err(IdentityNamespacesError::AllWithOthers { others })
            };
        }
        let mut namespaces = BTreeSet::new();
        for value in values {
            if value.is_empty() {
                return Err(IdentityNamespacesError::Empty);
            }
            if !is_dns_label(value) {
                return Err(IdentityNamespacesError::InvalidName {
                    value: value.to_owned(),
                });
            }
            namespaces.insert(value.to_owned());
        }
        Ok(IdentityNamespaces::Only(namespaces))
    }

    /// Whether ChatGroups in `namespace` may use the operator's own identity.
    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            IdentityNamespaces::All => true,
            IdentityNamespaces::Only(namespaces) => namespaces.contains(namespace),
        }
    }
}

impl fmt::Display for IdentityNamespaces {
    /// `*`, the names separated by commas, or `none`: for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityNamespaces::All => f.write_str(ALL_NAMESPACES),
            IdentityNamespaces::Only(namespaces) if namespaces.is_empty() => f.write_str("none"),
            IdentityNamespaces::Only(namespaces) => {
                let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// A value of [`IDENTITY_NAMESPACES_FLAG`] that is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityNamespacesError {
    /// `*` given together with namespace names.
    #[error(
        "{IDENTITY_NAMESPACES_FLAG}: `{ALL_NAMESPACES}` (every namespace) cannot be combined with namespace names (also given: {others}); give either `{ALL_NAMESPACES}` alone or a list of namespaces", others = .others.join(", ")
    )]
    AllWithOthers {
        /// The other values given.
        others: Vec<String>,
    },
    /// An empty value: a stray comma, or the flag or its environment twin set to nothing.
    #[error(
        "{IDENTITY_NAMESPACES_FLAG}: an empty namespace name (a stray comma, or {IDENTITY_NAMESPACES_ENV} set to nothing); leave the flag out to allow only the operator's own namespace"
    )]
    Empty,
    /// A value that is not a namespace name.
    #[error(
        "{IDENTITY_NAMESPACES_FLAG}: {value:?} is not a namespace name (at most {MAX_NAMESPACE_CHARS} lowercase letters, digits and '-', starting and ending with a letter or digit), nor `{ALL_NAMESPACES}` for every namespace"
    )]
    InvalidName {
        /// The value, trimmed.
        value: String,
    },
}

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
    /// No Secret applies, and the object's namespace may not use the operator's own identity
    /// (it is not in [`IDENTITY_NAMESPACES_FLAG`]).
    #[error(
        "resolving credentials: spec.credentials.secretRef is not set and there is no Secret `{default_secret}` in the namespace, and namespace `{namespace}` is not allowed to use the operator's own identity; create the Secret `{default_secret}` in the namespace (or name a Secret in spec.credentials.secretRef), or add `{namespace}` to the operator's {IDENTITY_NAMESPACES_FLAG} (chart value {IDENTITY_NAMESPACES_VALUE})"
    )]
    IdentityNotAllowed {
        /// The object's namespace.
        namespace: String,
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

    /// Bounded label for metrics: a failure of the operator's identity at STS is labelled as
    /// the same failure at CAMS would be (throttled, unavailable, credentials invalid); every
    /// other failure is a missing credential.
    pub fn category(&self) -> &'static str {
        use crate::cams::ErrorKind;
        use crate::crd::Reason;
        match self.reason() {
            Reason::Throttled => ErrorKind::Throttled.as_str(),
            Reason::CamsUnavailable => ErrorKind::Unavailable.as_str(),
            Reason::CredentialsInvalid => ErrorKind::CredentialsInvalid.as_str(),
            _ => CATEGORY_CREDENTIALS_MISSING,
        }
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
    pub credentials: Credentials,
    /// Their source.
    pub source: CredentialSource,
}

/// How far the resolution of one object gets without asking the operator's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A Secret of the object's namespace applies: these credentials.
    Secret(Resolved),
    /// No Secret applies and the namespace may use the operator's own identity: the caller
    /// asks the identity for its current credentials (with RRSA, possibly an STS call).
    Operator,
}

/// What the last step of the resolution may use.
#[derive(Clone, Copy, Debug)]
pub struct OperatorFallback<'a> {
    /// Whether the operator has an identity of its own (an AccessKey or RRSA).
    pub configured: bool,
    /// The namespaces whose ChatGroups may use it.
    pub namespaces: &'a IdentityNamespaces,
}

/// Decides where the credentials of `spec`, an object in `namespace`, come from (see the
/// module docs for the order). `secrets` looks a Secret up by name in the object's namespace
/// and returns its `data`. When no Secret applies and `fallback` does not allow the namespace,
/// the answer is [`CredentialsError::IdentityNotAllowed`] (or [`CredentialsError::NoneFound`]
/// when the operator has no identity at all), and nothing is asked of the identity.
pub fn decide<F>(
    spec: &ChatGroupSpec,
    namespace: &str,
    secrets: F,
    fallback: OperatorFallback<'_>,
) -> Result<Decision, CredentialsError>
where
    F: Fn(&str) -> Option<BTreeMap<String, Vec<u8>>>,
{
    let source = CredentialSource::from_spec(spec.credentials.as_ref());
    let from = |name: &str, keys: &SecretKeys, data: BTreeMap<String, Vec<u8>>| {
        from_secret(name, keys, &data).map(|credentials| {
            Decision::Secret(Resolved {
                credentials,
                source: source.clone(),
            })
        })
    };
    match &source {
        CredentialSource::SecretRef { name, keys } => match secrets(name) {
            Some(data) => from(name, keys, data),
            None => Err(CredentialsError::SecretNotFound {
                name: name.clone(),
                access_key_id_key: keys.access_key_id.clone(),
                access_key_secret_key: keys.access_key_secret.clone(),
            }),
        },
        CredentialSource::NamespaceDefault { keys } => match secrets(DEFAULT_SECRET_NAME) {
            Some(data) => from(DEFAULT_SECRET_NAME, keys, data),
            None => operator_step(namespace, fallback),
        },
        CredentialSource::Operator => operator_step(namespace, fallback),
    }
}

/// The last step: the operator's identity, if it has one and the namespace may use it.
fn operator_step(
    namespace: &str,
    fallback: OperatorFallback<'_>,
) -> Result<Decision, CredentialsError> {
    if !fallback.configured {
        Err(CredentialsError::NoneFound {
            default_secret: DEFAULT_SECRET_NAME,
        })
    } else if !fallback.namespaces.allows(namespace) {
        Err(CredentialsError::IdentityNotAllowed {
            namespace: namespace.to_owned(),
            default_secret: DEFAULT_SECRET_NAME,
        })
    } else {
        Ok(Decision::Operator)
    }
}

/// Resolves `spec`'s credentials, for an object in `namespace`, in one go: [`decide`], with
/// `operator` as the operator's own identity (if it has one) and `namespaces` as those
/// allowed to use it.
pub fn resolve<F>(
    spec: &ChatGroupSpec,
    namespace: &str,
    secrets: F,
    namespaces: &IdentityNamespaces,
    operator: Option<&Credentials>,
) -> Result<Credentials, CredentialsError>
where
    F: Fn(&str) -> Option<BTreeMap<String, Vec<u8>>>,
{
    resolve_with_source(spec, namespace, secrets, namespaces, operator).map(|r| r.credentials)
}

/// As [`resolve`], also saying which source was used.
pub fn resolve_with_source<F>(
    spec: &ChatGroupSpec,
    namespace: &str,
    secrets: F,
    namespaces: &IdentityNamespaces,
    operator: Option<&Credentials>,
) -> Result<Resolved, CredentialsError>
where
    F: Fn(&str) -> Option<BTreeMap<String, Vec<u8>>>,
{
    let fallback = OperatorFallback {
        configured: operator.is_some(),
        namespaces,
    };
    match decide(spec, namespace, secrets, fallback)? {
        Decision::Secret(resolved) => Ok(resolved),
        Decision::Operator => operator
            .map(|credentials| Resolved {
                credentials: credentials.clone(),
                source: CredentialSource::Operator,
            })
            .ok_or(CredentialsError::NoneFound {
                default_secret: DEFAULT_SECRET_NAME,
            }),
    }
}

/// Metrics label of missing or malformed credentials.
pub const CATEGORY_CREDENTIALS_MISSING: &str = "credentials_missing";

const WHAT_ID: &str = "AccessKey ID";
const WHAT_SECRET: &str = "AccessKey secret";
const WHAT_TOKEN: &str = "STS security token";

fn from_secret(
    secret: &str,
    keys: &SecretKeys,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Credentials, CredentialsError> {
    let read =
        |key: &str, what, field, required| read_value(secret, data, key, what, field, required);
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

/// One value of the Secret, trimmed: `Ok(None)` when an optional key is absent or empty.
fn read_value(
    secret: &str,
    data: &BTreeMap<String, Vec<u8>>,
    key: &str,
    what: &'static str,
    field: &'static str,
    required: bool,
) -> Result<Option<String>, CredentialsError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatGroup, SecretRef};

    const ID: &str = "LTAI5tFAKEFAKEFAKE";
    const SECRET: &str = "s3cr3t-VALUE-never-shown";
    const TOKEN: &str = "CAIS+token-VALUE";
    /// The namespace of the objects under test.
    const NS: &str = "support";

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
            NS,
            store(vec![
                ("team-a", good()),
                (DEFAULT_SECRET_NAME, BTreeMap::new()),
            ]),
            &IdentityNamespaces::All,
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
            NS,
            store(vec![(DEFAULT_SECRET_NAME, good())]),
            &IdentityNamespaces::All,
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
            NS,
            store(vec![(DEFAULT_SECRET_NAME, good())]),
            &IdentityNamespaces::All,
            Some(&operator()),
        )
        .expect("default secret");
        assert_eq!(resolved.credentials.access_key_id, ID);
        assert!(matches!(
            resolved.source,
            CredentialSource::NamespaceDefault { .. }
        ));

        let resolved = resolve_with_source(
            &spec,
            NS,
            store(vec![]),
            &IdentityNamespaces::All,
            Some(&operator()),
        )
        .expect("operator");
        assert_eq!(resolved.credentials, operator());
        assert_eq!(resolved.source, CredentialSource::Operator);

        let err =
            resolve(&spec, NS, store(vec![]), &IdentityNamespaces::All, None).expect_err("nothing");
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
            NS,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[("accessKeyId", ID.as_bytes())]),
            )]),
            &IdentityNamespaces::All,
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
        let creds = resolve(
            &spec,
            NS,
            store(vec![("ram-user", data)]),
            &IdentityNamespaces::All,
            None,
        )
        .expect("resolved");
        assert_eq!(creds.access_key_id, ID, "value trimmed");
        assert_eq!(
            creds.security_token.as_ref().map(SecretString::expose),
            Some(TOKEN)
        );

        // An explicitly named token key must be present.
        let data = secret(&[("AK", ID.as_bytes()), ("SK", SECRET.as_bytes())]);
        let err = resolve(
            &spec,
            NS,
            store(vec![("ram-user", data)]),
            &IdentityNamespaces::All,
            None,
        )
        .expect_err("token");
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
            NS,
            store(vec![(DEFAULT_SECRET_NAME, data.clone())]),
            &IdentityNamespaces::All,
            None,
        )
        .expect("empty default token is ignored");
        assert_eq!(creds.security_token, None);
        data.insert("securityToken".to_owned(), TOKEN.as_bytes().to_vec());
        let creds = resolve(
            &spec,
            NS,
            store(vec![(DEFAULT_SECRET_NAME, data)]),
            &IdentityNamespaces::All,
            None,
        )
        .expect("token");
        assert!(creds.security_token.is_some());
    }

    #[test]
    fn empty_and_non_utf8_values() {
        let spec = ChatGroup::test("a").spec;
        let err = resolve(
            &spec,
            NS,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[
                    ("accessKeyId", b"  \n"),
                    ("accessKeySecret", SECRET.as_bytes()),
                ]),
            )]),
            &IdentityNamespaces::All,
            None,
        )
        .expect_err("empty");
        assert!(matches!(&err, CredentialsError::EmptyValue { key, .. } if key == "accessKeyId"));
        assert!(err.to_string().contains("is empty"), "{err}");
        assert_no_values(&err);

        let err = resolve(
            &spec,
            NS,
            store(vec![(
                DEFAULT_SECRET_NAME,
                secret(&[
                    ("accessKeyId", ID.as_bytes()),
                    ("accessKeySecret", &[0xff, 0xfe]),
                ]),
            )]),
            &IdentityNamespaces::All,
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
        let resolved = resolve_with_source(
            &spec,
            NS,
            store(vec![(DEFAULT_SECRET_NAME, data)]),
            &IdentityNamespaces::All,
            None,
        )
        .expect("resolved");
        let text = format!("{resolved:?}");
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn identity_namespaces_default_to_the_operators_own() {
        let parsed = IdentityNamespaces::from_flag(&[], "cams-system").expect("default");
        assert_eq!(parsed, IdentityNamespaces::only(["cams-system"]));
        assert!(parsed.allows("cams-system"));
        assert!(!parsed.allows("support"));
        assert_eq!(parsed.to_string(), "cams-system");
    }

    #[test]
    fn identity_namespaces_star_allows_every_namespace() {
        let parsed = IdentityNamespaces::from_flag(&strings(&["*"]), "cams-system").expect("*");
        assert_eq!(parsed, IdentityNamespaces::All);
        for namespace in ["cams-system", "support", "anything-at-all"] {
            assert!(parsed.allows(namespace), "{namespace}");
        }
        assert_eq!(parsed.to_string(), "*");
    }

    #[test]
    fn identity_namespaces_list_allows_exactly_the_listed_ones() {
        let parsed = IdentityNamespaces::from_flag(
            &strings(&["support", " sales ", "support", "a-1"]),
            "cams-system",
        )
        .expect("list");
        assert_eq!(
            parsed,
            IdentityNamespaces::only(["a-1", "sales", "support"])
        );
        assert!(parsed.allows("support") && parsed.allows("sales"));
        assert!(
            !parsed.allows("cams-system"),
            "an explicit list replaces the default"
        );
        assert!(!parsed.allows("Support") && !parsed.allows(""));
        assert_eq!(parsed.to_string(), "a-1,sales,support");
        assert!(!IdentityNamespaces::default().allows("cams-system"));
        assert_eq!(IdentityNamespaces::default().to_string(), "none");
    }

    #[test]
    fn invalid_identity_namespaces_are_refused_naming_the_flag() {
        let long = "a".repeat(64);
        let cases: [(&[&str], &str); 9] = [
            (&["*", "support"], "cannot be combined"),
            (&["support", "*"], "also given: support"),
            (&["*", "*"], "cannot be combined"),
            (&["Sales"], "\"Sales\" is not a namespace name"),
            (&["-sales"], "\"-sales\""),
            (&["sales.emea"], "\"sales.emea\""),
            (&[""], "an empty namespace name"),
            (&[long.as_str()], "at most 63"),
            (&["support", " "], "a stray comma"),
        ];
        for (values, needle) in cases {
            let err = IdentityNamespaces::from_flag(&strings(values), "cams-system")
                .expect_err("refused");
            let text = err.to_string();
            assert!(
                text.starts_with(IDENTITY_NAMESPACES_FLAG),
                "{values:?}: {text}"
            );
            assert!(text.contains(needle), "{values:?}: {text}");
        }
        let err = IdentityNamespaces::from_flag(&strings(&["*", "a", "b"]), "x").unwrap_err();
        assert_eq!(
            err,
            IdentityNamespacesError::AllWithOthers {
                others: strings(&["a", "b"])
            }
        );
    }

    fn fallback(namespaces: &IdentityNamespaces) -> OperatorFallback<'_> {
        OperatorFallback {
            configured: true,
            namespaces,
        }
    }

    #[test]
    fn allowed_namespace_falls_back_to_the_operator() {
        let spec = ChatGroup::test("a").spec;
        let allowed = IdentityNamespaces::only([NS]);
        let decision = decide(&spec, NS, store(vec![]), fallback(&allowed)).expect("allowed");
        assert_eq!(decision, Decision::Operator);
        let resolved = resolve_with_source(&spec, NS, store(vec![]), &allowed, Some(&operator()))
            .expect("operator");
        assert_eq!(resolved.credentials, operator());
        assert_eq!(resolved.source, CredentialSource::Operator);
    }

    #[test]
    fn disallowed_namespace_gets_credentials_missing_without_asking_the_identity() {
        let spec = ChatGroup::test("a").spec;
        let allowed = IdentityNamespaces::only(["cams-system"]);
        let err = decide(&spec, NS, store(vec![]), fallback(&allowed)).expect_err("not allowed");
        assert_eq!(
            err,
            CredentialsError::IdentityNotAllowed {
                namespace: NS.to_owned(),
                default_secret: DEFAULT_SECRET_NAME,
            }
        );
        assert_eq!(err.reason(), crate::crd::Reason::CredentialsMissing);
        assert!(!err.is_retryable(), "terminal until something changes");
        assert_eq!(err.category(), "credentials_missing");
        let text = err.to_string();
        for needle in [
            "namespace `support` is not allowed to use the operator's own identity",
            "create the Secret `cams-credentials` in the namespace",
            "spec.credentials.secretRef",
            "add `support` to the operator's --identity-namespaces",
            "chart value credentials.namespaces",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert_eq!(
            resolve(&spec, NS, store(vec![]), &allowed, Some(&operator())),
            Err(err)
        );

        // A secretRef to a missing Secret is reported as such, not as a namespace problem.
        let named = ChatGroup::test("a").with_secret_ref("team-a").spec;
        let err = decide(&named, NS, store(vec![]), fallback(&allowed)).unwrap_err();
        assert!(
            matches!(err, CredentialsError::SecretNotFound { .. }),
            "{err:?}"
        );

        // Without an identity of its own, the operator says so rather than point at the flag.
        let none = OperatorFallback {
            configured: false,
            namespaces: &allowed,
        };
        let err = decide(&spec, NS, store(vec![]), none).unwrap_err();
        assert!(matches!(err, CredentialsError::NoneFound { .. }), "{err:?}");
    }

    #[test]
    fn star_allows_the_operator_everywhere() {
        let spec = ChatGroup::test("a").spec;
        for namespace in [NS, "sales", "cams-system"] {
            let decision = decide(
                &spec,
                namespace,
                store(vec![]),
                fallback(&IdentityNamespaces::All),
            )
            .expect("allowed");
            assert_eq!(decision, Decision::Operator, "{namespace}");
        }
    }

    #[test]
    fn a_secret_wins_in_every_namespace() {
        let nowhere = IdentityNamespaces::none();
        let default = ChatGroup::test("a").spec;
        let named = ChatGroup::test("a").with_secret_ref("team-a").spec;
        for allowed in [
            &nowhere,
            &IdentityNamespaces::only([NS]),
            &IdentityNamespaces::All,
        ] {
            let decision = decide(
                &default,
                NS,
                store(vec![(DEFAULT_SECRET_NAME, good())]),
                fallback(allowed),
            )
            .expect("default Secret");
            assert!(
                matches!(&decision, Decision::Secret(r) if r.credentials.access_key_id == ID
                    && matches!(r.source, CredentialSource::NamespaceDefault { .. })),
                "{allowed}: {decision:?}"
            );
            let creds = resolve(
                &named,
                NS,
                store(vec![("team-a", good())]),
                allowed,
                Some(&operator()),
            )
            .expect("named Secret");
            assert_eq!(creds.access_key_id, ID, "{allowed}");
        }
    }
}
