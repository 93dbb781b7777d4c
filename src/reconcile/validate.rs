//! Step 1 of the pipeline: check a `ChatGroupSpec` and normalise it into a [`ValidSpec`].
//!
//! The CRD schema already enforces most rules when the API server admits an object; this check
//! repeats them (plus the ones a schema cannot express) so that the operator never acts on an
//! object that slipped past an older CRD, and so that `cams-operator reconcile` gives the same
//! answers without a cluster. Every problem is reported at once, each naming the field and what
//! is allowed.

use std::fmt;
use std::time::Duration;

use crate::cams::client::check_endpoint;
use crate::cams::{Endpoint, GroupKey};
use crate::crd::{
    ChannelType, ChatGroupSpec, CreationPolicy, CredentialsSpec, DeletionPolicy, DriftPolicy,
    InviteLinkPolicy, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS, MIN_RESYNC_INTERVAL,
    ManagementPolicy,
};
use crate::reconcile::credentials::CredentialSource;
use crate::reconcile::names::{is_dns_subdomain, is_secret_key};

/// Longest accepted `custSpaceId`, in characters (as in the CRD schema).
const MAX_CUST_SPACE_ID_CHARS: usize = 64;
/// Longest accepted `businessNumber`, in digits (as in the CRD schema).
const MAX_BUSINESS_NUMBER_CHARS: usize = 32;
/// Longest accepted `groupId`, in characters (as in the CRD schema).
const MAX_GROUP_ID_CHARS: usize = 128;
/// Longest accepted URL (`profilePictureFile`, `endpoint`), in characters.
const MAX_URL_CHARS: usize = 2048;
/// Longest accepted `region`, in characters.
const MAX_REGION_CHARS: usize = 64;
/// Metrics label of an invalid spec.
pub const CATEGORY_INVALID_SPEC: &str = "invalid_spec";
/// Longest duration Kubernetes' CEL `duration()` accepts (Go's `time.Duration`, `i64`
/// nanoseconds).
const MAX_DURATION_NANOS: u128 = i64::MAX as u128;

/// Longest part of a value quoted back in a problem, in characters.
const MAX_SHOWN_CHARS: usize = 64;

/// `value` quoted for a problem text: whole when short, else its first [`MAX_SHOWN_CHARS`]
/// characters and its length, so that a value far over its limit does not fill the message
/// (and the status condition that carries it).
pub(crate) fn shown(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!(
            "{:?}... ({} characters)",
            &value[..end],
            value.chars().count()
        ),
    }
}

/// The checked, normalised desired state of one ChatGroup: everything the rest of the pipeline
/// needs, with defaults applied and empty optional strings turned into `None` (never sent).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    /// The three keys addressing the group. `group_id` is empty while the group is still to be
    /// created (`creationPolicy: Create` without `groupId`); the engine fills it in from
    /// `status.groupId` once the created group is known ([`ValidSpec::group_known`]).
    pub key: GroupKey,
    /// Messaging channel.
    pub channel: ChannelType,
    /// Desired subject; `None` leaves the group's subject alone.
    pub subject: Option<String>,
    /// Desired description; `None` leaves the group's description alone.
    pub description: Option<String>,
    /// Desired picture URL; `None` leaves the group's picture alone.
    pub profile_picture_file: Option<String>,
    /// Where CAMS requests go: `spec.endpoint` when set, else the region's public endpoint.
    pub endpoint: Endpoint,
    /// `spec.managementPolicy`.
    pub management: ManagementPolicy,
    /// `spec.driftPolicy`.
    pub drift: DriftPolicy,
    /// `spec.resyncInterval`, parsed.
    pub resync: Duration,
    /// Where the credentials come from (first choice; see [`crate::reconcile::credentials`]).
    pub credentials: CredentialSource,
    /// `spec.creationPolicy`.
    pub creation: CreationPolicy,
    /// `spec.deletionPolicy`.
    pub deletion: DeletionPolicy,
    /// `spec.inviteLink`.
    pub invite_link: InviteLinkPolicy,
}

impl ValidSpec {
    /// Whether the group's ID is known (from the spec, or filled in from status).
    pub fn group_known(&self) -> bool {
        !self.key.group_id.is_empty()
    }
}

/// One broken rule: the field (as a path such as `spec.subject`) and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, for example `spec.businessNumber`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Every problem found in a spec. `Display` joins them with `; `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {}", join(.errors))]
pub struct SpecErrors {
    /// The problems, in field order.
    pub errors: Vec<FieldError>,
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SpecErrors {
    /// Bounded label for metrics.
    pub fn category(&self) -> &'static str {
        CATEGORY_INVALID_SPEC
    }
    /// Always false: nothing changes until the spec does.
    pub fn is_retryable(&self) -> bool {
        false
    }
    /// The fields named, for tests and messages.
    pub fn fields(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.field.as_str()).collect()
    }
}

/// Checks `spec` and returns the normalised desired state, or every problem found.
pub fn validate(spec: &ChatGroupSpec) -> Result<ValidSpec, SpecErrors> {
    validate_with_endpoint(spec, None)
}

/// As [`validate`], with an endpoint URL that overrides `spec.endpoint` and `spec.region` (the
/// `--endpoint` flag of `cams-operator reconcile`); a bad override is reported as `--endpoint`.
pub fn validate_with_endpoint(
    spec: &ChatGroupSpec,
    endpoint_override: Option<&str>,
) -> Result<ValidSpec, SpecErrors> {
    // Destructured in full so that a new spec field cannot be forgotten here.
    let ChatGroupSpec {
        cust_space_id,
        business_number,
        group_id,
        channel_type,
        subject,
        description,
        profile_picture_file,
        credentials,
        region,
        endpoint,
        management_policy,
        drift_policy,
        resync_interval,
        creation_policy,
        deletion_policy,
        invite_link,
    } = spec;
    let mut errors = Vec::new();
    let mut fail = |field: &str, problem: String| {
        errors.push(FieldError {
            field: field.to_owned(),
            problem,
        });
    };
    check_group_key(&mut fail, cust_space_id, business_number);
    check_group_id(&mut fail, group_id.as_deref(), *creation_policy, subject);
    let subject = check_text(&mut fail, "spec.subject", subject, 1, MAX_SUBJECT_CHARS);
    let description = check_text(
        &mut fail,
        "spec.description",
        description,
        0,
        MAX_DESCRIPTION_CHARS,
    );
    let picture = check_picture(&mut fail, profile_picture_file);
    let chosen_endpoint = check_region_and_endpoint(&mut fail, region, endpoint, endpoint_override);
    let resync = check_resync(&mut fail, resync_interval);
    let source = check_credentials(&mut fail, credentials.as_ref());

    match resync {
        Some(resync) if errors.is_empty() => Ok(ValidSpec {
            key: GroupKey {
                cust_space_id: cust_space_id.clone(),
                business_number: business_number.clone(),
                group_id: group_id.clone().unwrap_or_default(),
            },
            channel: *channel_type,
            subject: subject.map(str::to_owned),
            description: description.map(str::to_owned),
            profile_picture_file: picture.map(str::to_owned),
            endpoint: chosen_endpoint.unwrap_or_else(|| spec_endpoint(spec)),
            management: *management_policy,
            drift: *drift_policy,
            resync,
            credentials: source,
            creation: *creation_policy,
            deletion: *deletion_policy,
            invite_link: *invite_link,
        }),
        _ => Err(SpecErrors { errors }),
    }
}

/// Where a spec's requests go: `spec.endpoint` when set, else the region's public endpoint.
pub fn spec_endpoint(spec: &ChatGroupSpec) -> Endpoint {
    spec.endpoint
        .as_deref()
        .map_or_else(|| Endpoint::for_region(&spec.region), Endpoint::from_url)
}

/// The three keys that address the group in CAMS.
fn check_group_key(
    fail: &mut impl FnMut(&str, String),
    cust_space_id: &str,
    business_number: &str,
) {
    check_id(
        fail,
        "spec.custSpaceId",
        cust_space_id,
        MAX_CUST_SPACE_ID_CHARS,
    );
    if business_number.is_empty()
        || business_number.len() > MAX_BUSINESS_NUMBER_CHARS
        || !business_number.bytes().all(|b| b.is_ascii_digit())
    {
        fail(
            "spec.businessNumber",
            format!(
                "must be 1 to {MAX_BUSINESS_NUMBER_CHARS} digits (country code first, no `+` or spaces), got {}",
                shown(business_number)
            ),
        );
    }
}

/// `groupId`: a valid ID when set; when unset, the operator must be asked to create the group,
/// with a subject to create it with and to find it by.
fn check_group_id(
    fail: &mut impl FnMut(&str, String),
    group_id: Option<&str>,
    creation: CreationPolicy,
    subject: &Option<String>,
) {
    match group_id {
        Some(group_id) => check_id(fail, "spec.groupId", group_id, MAX_GROUP_ID_CHARS),
        None if creation != CreationPolicy::Create => fail(
            "spec.groupId",
            "is required unless creationPolicy is Create (then the operator creates the group)"
                .to_owned(),
        ),
        None if non_empty(subject).is_none() => fail(
            "spec.subject",
            "is required when the operator creates the group (creationPolicy Create without groupId): the new group is created with it and found by it".to_owned(),
        ),
        None => {}
    }
}

/// A text field CAMS limits in characters; `min` only shapes the message (an empty text is
/// "not set", never an error).
fn check_text<'s>(
    fail: &mut impl FnMut(&str, String),
    field: &str,
    value: &'s Option<String>,
    min: usize,
    max: usize,
) -> Option<&'s str> {
    let text = non_empty(value)?;
    let n = text.chars().count();
    if n > max {
        let allowed = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        fail(field, format!("must be {allowed} characters, got {n}"));
    }
    Some(text)
}

fn check_picture<'s>(
    fail: &mut impl FnMut(&str, String),
    value: &'s Option<String>,
) -> Option<&'s str> {
    let picture = non_empty(value)?;
    if let Err(problem) = check_url(picture, &["https"]) {
        fail(
            "spec.profilePictureFile",
            format!(
                "must be an https:// URL of a square JPEG (at most 5 MB, at least 192x192 pixels): {problem}"
            ),
        );
    }
    Some(picture)
}

/// The region, and the endpoint that overrides it: `--endpoint` over `spec.endpoint`. Returns
/// the chosen override, if any.
fn check_region_and_endpoint(
    fail: &mut impl FnMut(&str, String),
    region: &str,
    endpoint: &Option<String>,
    endpoint_override: Option<&str>,
) -> Option<Endpoint> {
    let region_ok = !region.is_empty()
        && region.len() <= MAX_REGION_CHARS
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        fail(
            "spec.region",
            format!(
                "must be an Alibaba Cloud region ID of lower-case letters, digits and `-` (for example `ap-southeast-1`), got {}",
                shown(region)
            ),
        );
    }
    let mut chosen = None;
    for (field, url) in [
        ("spec.endpoint", endpoint.as_deref()),
        ("--endpoint", endpoint_override),
    ] {
        let Some(url) = url else { continue };
        match check_endpoint_url(url) {
            Ok(()) => chosen = Some(Endpoint::from_url(url)),
            Err(problem) => fail(
                field,
                format!("must be an http:// or https:// URL of a CAMS endpoint: {problem}"),
            ),
        }
    }
    chosen
}

fn check_resync(fail: &mut impl FnMut(&str, String), resync_interval: &str) -> Option<Duration> {
    match parse_duration(resync_interval) {
        Ok(d) if d < MIN_RESYNC_INTERVAL => {
            fail(
                "spec.resyncInterval",
                format!("must be at least 1m, got {}", shown(resync_interval)),
            );
            None
        }
        Ok(d) => Some(d),
        Err(problem) => {
            fail(
                "spec.resyncInterval",
                format!(
                    "must be a duration such as `30m`, `1h` or `1h30m` (units ns, us, ms, s, m, h) of at least 1m: {problem}"
                ),
            );
            None
        }
    }
}

/// The Secret reference and key names; returns where the credentials come from.
fn check_credentials(
    fail: &mut impl FnMut(&str, String),
    credentials: Option<&CredentialsSpec>,
) -> CredentialSource {
    let source = CredentialSource::from_spec(credentials);
    if let Some(creds) = credentials {
        if let Some(secret_ref) = &creds.secret_ref
            && !is_dns_subdomain(&secret_ref.name)
        {
            fail(
                "spec.credentials.secretRef.name",
                format!(
                    "must be a Secret name (lower-case letters, digits, `-` and `.`, at most 253 characters), got {}",
                    shown(&secret_ref.name)
                ),
            );
        }
        for (field, key) in [
            ("spec.credentials.accessKeyIdKey", &creds.access_key_id_key),
            (
                "spec.credentials.accessKeySecretKey",
                &creds.access_key_secret_key,
            ),
            (
                "spec.credentials.securityTokenKey",
                &creds.security_token_key,
            ),
        ] {
            if let Some(key) = key
                && !is_secret_key(key)
            {
                fail(
                    field,
                    format!(
                        "must be a Secret key (letters, digits, `-`, `_` and `.`, at most 253 characters), got {}",
                        shown(key)
                    ),
                );
            }
        }
    }
    if let Some(keys) = source.keys()
        && (keys.access_key_id == keys.access_key_secret
            || keys.access_key_id == keys.security_token
            || keys.access_key_secret == keys.security_token)
    {
        fail(
            "spec.credentials",
            format!(
                "accessKeyIdKey, accessKeySecretKey and securityTokenKey must name three different keys, got {}, {} and {}",
                shown(&keys.access_key_id),
                shown(&keys.access_key_secret),
                shown(&keys.security_token)
            ),
        );
    }
    source
}

/// `Some("")` and `None` both mean "not set": an empty string is never sent to CAMS.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn check_id(fail: &mut impl FnMut(&str, String), field: &str, value: &str, max: usize) {
    let n = value.chars().count();
    if n == 0 || n > max || value.chars().any(char::is_whitespace) {
        fail(
            field,
            format!(
                "must be 1 to {max} characters without spaces, got {}",
                shown(value)
            ),
        );
    }
}

/// Checks that `url` is an absolute URL with one of `schemes` and a host, at most
/// [`MAX_URL_CHARS`] characters long, without spaces or control characters.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("longer than {MAX_URL_CHARS} characters"));
    }
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(format!("{} has no scheme", shown(url)));
    };
    if !schemes.contains(&scheme) {
        return Err(format!("scheme {} is not allowed", shown(scheme)));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{} contains spaces", shown(url)));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|err| format!("{} is not a URL ({err})", shown(url)))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{} has no host", shown(url)));
    }
    Ok(())
}

/// [`check_url`] for a CAMS endpoint, plus what the client needs to send to it (no user name,
/// password, query or fragment).
fn check_endpoint_url(url: &str) -> Result<(), String> {
    check_url(url, &["https", "http"])?;
    check_endpoint(&Endpoint::from_url(url))
}

/// Parses a duration in the form Kubernetes' CEL `duration()` and Go's `time.ParseDuration`
/// accept and the CRD pattern allows: one or more `<number>[.<fraction>]<unit>` with units
/// `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, for example `90s`, `1h30m` or `1.5h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty".to_owned());
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if int_len == 0 {
            return Err(format!("expected a number at {}", shown(rest)));
        }
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                if frac_len == 0 {
                    return Err(format!("expected digits after `.` in {}", shown(text)));
                }
                after_dot.split_at(frac_len)
            }
            None => ("", after),
        };
        let (unit_nanos, after) = [
            ("ns", 1u128),
            ("us", 1_000),
            ("µs", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ]
        .iter()
        .find_map(|(unit, nanos)| after.strip_prefix(unit).map(|a| (*nanos, a)))
        .ok_or_else(|| format!("missing or unknown unit in {}", shown(text)))?;
        let int: u128 = int_part
            .parse()
            .map_err(|_| format!("number too large in {}", shown(text)))?;
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("{} is too long", shown(text)))?;
        // The fraction, truncated to whole nanoseconds like Go does. Adding it can pass the
        // largest `u128` when the whole part is just under it.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes().take(20) {
            scale /= 10;
            nanos = nanos
                .checked_add(u128::from(digit - b'0') * scale)
                .ok_or_else(|| format!("{} is too long", shown(text)))?;
        }
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_DURATION_NANOS)
            .ok_or_else(|| format!("{} is too long", shown(text)))?;
        rest = after;
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| format!("{} is too long", shown(text)))?;
    let sub =
        u32::try_from(total % 1_000_000_000).map_err(|_| format!("{} is too long", shown(text)))?;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatGroup, CredentialsSpec, SecretRef};

    fn spec() -> ChatGroupSpec {
        ChatGroup::test("support").spec
    }

    fn only_field(spec: &ChatGroupSpec) -> SpecErrors {
        let err = validate(spec).expect_err("the spec should be rejected");
        assert_eq!(err.errors.len(), 1, "{err}");
        err
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let valid = validate(&spec()).expect("valid");
        assert_eq!(valid.key.group_id, "EA303SUPPORT");
        assert_eq!(
            valid.endpoint.as_str(),
            "https://cams.ap-southeast-1.aliyuncs.com/"
        );
        assert_eq!(valid.resync, Duration::from_secs(3600));
        assert_eq!(valid.management, ManagementPolicy::Manage);
        assert_eq!(valid.drift, DriftPolicy::Enforce);
        assert_eq!(valid.subject, None);
        assert!(matches!(
            valid.credentials,
            CredentialSource::NamespaceDefault { .. }
        ));
    }

    #[test]
    fn empty_optional_strings_become_none() {
        let mut s = spec();
        s.subject = Some(String::new());
        s.description = Some(String::new());
        s.profile_picture_file = Some(String::new());
        let valid = validate(&s).expect("valid");
        assert_eq!(
            (valid.subject, valid.description, valid.profile_picture_file),
            (None, None, None)
        );
    }

    #[test]
    fn each_key_rule_names_its_field() {
        for (field, mutate) in [
            (
                "spec.custSpaceId",
                Box::new(|s: &mut ChatGroupSpec| s.cust_space_id.clear()) as Box<dyn Fn(&mut _)>,
            ),
            (
                "spec.custSpaceId",
                Box::new(|s: &mut ChatGroupSpec| s.cust_space_id = "cams 1".into()),
            ),
            (
                "spec.custSpaceId",
                Box::new(|s: &mut ChatGroupSpec| s.cust_space_id = "c".repeat(65)),
            ),
            (
                "spec.businessNumber",
                Box::new(|s: &mut ChatGroupSpec| s.business_number = "+8613800001234".into()),
            ),
            (
                "spec.businessNumber",
                Box::new(|s: &mut ChatGroupSpec| s.business_number.clear()),
            ),
            (
                "spec.businessNumber",
                Box::new(|s: &mut ChatGroupSpec| s.business_number = "1".repeat(33)),
            ),
            (
                "spec.groupId",
                Box::new(|s: &mut ChatGroupSpec| s.group_id = Some(String::new())),
            ),
            (
                "spec.groupId",
                Box::new(|s: &mut ChatGroupSpec| s.group_id = None),
            ),
            (
                "spec.groupId",
                Box::new(|s: &mut ChatGroupSpec| s.group_id = Some("G".repeat(129))),
            ),
        ] {
            let mut s = spec();
            mutate(&mut s);
            let err = only_field(&s);
            assert_eq!(err.fields(), [field], "{err}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn subject_limit_counts_characters_not_bytes() {
        let mut s = spec();
        s.subject = Some("é".repeat(128));
        assert!(validate(&s).is_ok());
        s.subject = Some("é".repeat(129));
        let err = only_field(&s);
        assert_eq!(err.fields(), ["spec.subject"]);
        assert!(
            err.to_string().contains("1 to 128 characters, got 129"),
            "{err}"
        );
    }

    #[test]
    fn description_limit() {
        let mut s = spec();
        s.description = Some("d".repeat(2048));
        assert!(validate(&s).is_ok());
        s.description = Some("d".repeat(2049));
        let err = only_field(&s);
        assert_eq!(err.fields(), ["spec.description"]);
        assert!(err.to_string().contains("at most 2048"), "{err}");
    }

    #[test]
    fn picture_must_be_https() {
        for bad in [
            "http://cdn.example.com/a.jpg",
            "cdn.example.com/a.jpg",
            "https://",
            "https://cdn.example.com/a b.jpg",
        ] {
            let mut s = spec();
            s.profile_picture_file = Some(bad.to_owned());
            let err = only_field(&s);
            assert_eq!(err.fields(), ["spec.profilePictureFile"], "{bad}");
            assert!(err.to_string().contains("https://"), "{err}");
        }
        let mut s = spec();
        s.profile_picture_file = Some("https://cdn.example.com/a.jpg".to_owned());
        assert!(validate(&s).is_ok());
    }

    #[test]
    fn region_and_endpoint() {
        let mut s = spec();
        s.region = "AP_SOUTHEAST".to_owned();
        assert_eq!(only_field(&s).fields(), ["spec.region"]);

        let mut s = spec();
        s.region = "cn-hangzhou".to_owned();
        let valid = validate(&s).expect("valid");
        assert_eq!(
            valid.endpoint.as_str(),
            "https://cams.cn-hangzhou.aliyuncs.com/"
        );

        s.endpoint = Some("http://127.0.0.1:8787/".to_owned());
        let valid = validate(&s).expect("valid");
        assert_eq!(valid.endpoint.as_str(), "http://127.0.0.1:8787/");

        s.endpoint = Some("ftp://example.com".to_owned());
        assert_eq!(only_field(&s).fields(), ["spec.endpoint"]);
    }

    #[test]
    fn endpoint_override_wins_and_is_checked() {
        let s = spec().clone();
        let valid = validate_with_endpoint(&s, Some("http://127.0.0.1:1/")).expect("valid");
        assert_eq!(valid.endpoint.as_str(), "http://127.0.0.1:1/");
        let err = validate_with_endpoint(&s, Some("127.0.0.1:1")).expect_err("bad override");
        assert_eq!(err.fields(), ["--endpoint"]);
    }

    #[test]
    fn resync_interval_rules() {
        for (text, secs) in [
            ("1m", 60),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("90s", 90),
            ("60000ms", 60),
        ] {
            let mut s = spec();
            s.resync_interval = text.to_owned();
            assert_eq!(
                validate(&s).expect(text).resync,
                Duration::from_secs(secs),
                "{text}"
            );
        }
        for bad in ["30s", "59s", "1", "h", "1d", "", "-1h", "1.h", "10000000h"] {
            let mut s = spec();
            s.resync_interval = bad.to_owned();
            let err = only_field(&s);
            assert_eq!(err.fields(), ["spec.resyncInterval"], "{bad}");
            assert!(err.to_string().contains("1m"), "{err}");
        }
    }

    #[test]
    fn duration_parser_matches_go() {
        assert_eq!(parse_duration("1µs"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_duration("1m1ms"), Ok(Duration::from_millis(60_001)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1ns"), Ok(Duration::from_nanos(1)));
        assert!(
            parse_duration("2562048h").is_err(),
            "beyond Go's int64 nanoseconds"
        );
        assert!(parse_duration("2562047h").is_ok());
    }

    #[test]
    fn credentials_rules() {
        let mut s = spec();
        s.credentials = Some(CredentialsSpec {
            secret_ref: Some(SecretRef {
                name: "Bad_Name".to_owned(),
            }),
            access_key_id_key: Some("id key".to_owned()),
            ..CredentialsSpec::default()
        });
        let err = validate(&s).expect_err("invalid");
        assert_eq!(
            err.fields(),
            [
                "spec.credentials.secretRef.name",
                "spec.credentials.accessKeyIdKey"
            ]
        );

        let mut s = spec();
        s.credentials = Some(CredentialsSpec {
            access_key_id_key: Some("key".to_owned()),
            access_key_secret_key: Some("key".to_owned()),
            ..CredentialsSpec::default()
        });
        assert_eq!(only_field(&s).fields(), ["spec.credentials"]);

        let mut s = spec();
        s.credentials = Some(CredentialsSpec {
            secret_ref: Some(SecretRef {
                name: "team-a.cams".to_owned(),
            }),
            access_key_id_key: Some("AK_ID".to_owned()),
            ..CredentialsSpec::default()
        });
        let valid = validate(&s).expect("valid");
        assert!(
            matches!(&valid.credentials, CredentialSource::SecretRef { name, keys } if name == "team-a.cams" && keys.access_key_id == "AK_ID")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = spec();
        s.cust_space_id.clear();
        s.business_number = "abc".to_owned();
        s.subject = Some("s".repeat(200));
        s.resync_interval = "10s".to_owned();
        let err = validate(&s).expect_err("invalid");
        assert_eq!(
            err.fields(),
            [
                "spec.custSpaceId",
                "spec.businessNumber",
                "spec.subject",
                "spec.resyncInterval"
            ]
        );
        assert_eq!(err.to_string().matches("; ").count(), 3, "{err}");
        assert!(!err.is_retryable());
    }
}
