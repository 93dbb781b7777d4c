//! What can go wrong starting or configuring a simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

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
        action: String,
        /// What is wrong.
        detail: String,
    },
    /// A forced code breaks a rule.
    #[error("simulator: invalid forced code for group {group_id}: {detail}")]
    InvalidForcedCode {
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
