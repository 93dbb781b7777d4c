//! The operator's own Alibaba Cloud identity, the last step of credential resolution
//! (DESIGN 4.3): static keys from the `ALIBABA_CLOUD_*` environment.

use crate::cams::{Credentials, SecretString};

/// AccessKey ID variable.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// AccessKey secret variable.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// STS token variable.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// Credentials from the environment, when both the ID and the secret are set and non-empty.
pub fn from_env() -> Option<Credentials> {
    from_lookup(|name| std::env::var(name).ok())
}

/// Credentials from any variable lookup (pure; used by tests and [`from_env`]).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let access_key_id = non_empty(ENV_ACCESS_KEY_ID)?;
    let secret = non_empty(ENV_ACCESS_KEY_SECRET)?;
    Some(Credentials {
        access_key_id,
        access_key_secret: SecretString::new(secret),
        security_token: non_empty(ENV_SECURITY_TOKEN).map(SecretString::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_both_id_and_secret_and_reads_the_token() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(from_lookup(env(&[(ENV_ACCESS_KEY_ID, "id")])).is_none());
        assert!(from_lookup(env(&[(ENV_ACCESS_KEY_ID, "id"), (ENV_ACCESS_KEY_SECRET, " ")])).is_none());
        let creds = from_lookup(env(&[
            (ENV_ACCESS_KEY_ID, "id"),
            (ENV_ACCESS_KEY_SECRET, "s3cr3t"),
            (ENV_SECURITY_TOKEN, "tok"),
        ]))
        .expect("complete credentials");
        assert_eq!(creds.access_key_id, "id");
        assert_eq!(creds.access_key_secret.expose(), "s3cr3t");
        assert!(!format!("{creds:?}").contains("s3cr3t"));
        assert!(!format!("{creds:?}").contains("tok\""));
    }
}
