//! The Kubernetes naming rules the spec's references must follow: namespaces, Secret names and
//! Secret keys. The API server checks the same rules when the objects are created, so a name
//! that breaks them can never be found: it is reported as a spec error instead of a missing
//! Secret.

/// Longest Secret name or Secret key, in characters (a DNS subdomain).
const MAX_SECRET_NAME_CHARS: usize = 253;

/// Longest namespace name, in characters (a DNS label).
pub const MAX_NAMESPACE_CHARS: usize = 63;

/// Whether `name` is a valid namespace name: an RFC 1123 DNS label (at most 63 lowercase
/// letters, digits and `-`, starting and ending with a letter or digit).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAMESPACE_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is a valid Secret name: an RFC 1123 DNS subdomain (dot-separated DNS
/// labels, at most 253 characters).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME_CHARS
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `key` is a valid key of a Secret's data: letters, digits, `-`, `_` and `.`.
pub fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_SECRET_NAME_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
