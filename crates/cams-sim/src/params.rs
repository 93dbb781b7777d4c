//! A request's decoded parameters and the error an operation answers with: the vocabulary
//! every API handler shares.

use crate::group::GroupId;
use crate::protocol::{CHANNEL_TYPE_WHATSAPP, codes};

/// A failed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// HTTP 4xx/5xx with the gateway envelope.
    Gateway {
        http_status: u16,
        code: String,
        message: String,
    },
    /// HTTP 200 with `Code != OK` and `Success: false`.
    Business { code: String, message: String },
}

impl ApiError {
    pub(crate) fn business(code: &str, message: impl Into<String>) -> Self {
        ApiError::Business {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Decoded request parameters (query and form body).
pub(crate) struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    /// The value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&'a str, ApiError> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::Gateway {
                http_status: 400,
                code: codes::MISSING_PARAMETER.to_owned(),
                message: format!(
                    "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
                ),
            }),
        }
    }

    /// An optional text field: absent is `None`; empty or over `max` characters is refused
    /// (the simulator is stricter than documented: an empty string's meaning is unknown).
    pub(crate) fn text(&self, name: &str, max: Option<usize>) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("") => Err(ApiError::business(
                codes::INVALID_PARAMETER,
                format!("{name} must not be empty when it is sent."),
            )),
            Some(value) => match max {
                Some(max) if value.chars().count() > max => Err(ApiError::business(
                    codes::INVALID_PARAMETER,
                    format!("{name} must be at most {max} characters."),
                )),
                _ => Ok(Some(value)),
            },
        }
    }

    pub(crate) fn channel(&self) -> Result<(), ApiError> {
        match self.get("ChannelType") {
            None => Ok(()),
            Some(CHANNEL_TYPE_WHATSAPP) => Ok(()),
            Some(value) => Err(ApiError::business(
                codes::CHANNEL_TYPE_NOT_SUPPORT,
                format!(
                    "ChannelType {value:?} is not supported: the only supported value is {}.",
                    CHANNEL_TYPE_WHATSAPP
                ),
            )),
        }
    }

    pub(crate) fn group_key(&self) -> Result<GroupId, ApiError> {
        Ok((
            self.required("CustSpaceId")?.to_owned(),
            self.required("BusinessNumber")?.to_owned(),
            self.required("GroupId")?.to_owned(),
        ))
    }
}
