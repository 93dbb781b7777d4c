//! The groups the simulator holds, and changes made to them from outside the API.

use serde::{Deserialize, Serialize};

use crate::protocol::{GROUP_STATUS_ACTIVE, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS};

/// One WhatsApp group as the simulator holds it, keyed by (`custSpaceId`, `businessNumber`,
/// `groupId`). Also the seed format of the config file and of `POST /_sim/groups`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    pub cust_space_id: String,
    pub business_number: String,
    pub group_id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub profile_picture_file: Option<String>,
    /// `GroupStatus` (`ACTIVE`, `INACTIVE`, `SUSPENDED`, `CREATING`, `DELETING`, `UPDATING`).
    #[serde(default = "default_status")]
    pub group_status: String,
    #[serde(default)]
    pub invite_link: Option<String>,
    /// `GmtModifier`: last change, epoch milliseconds by the simulator's clock (set when the
    /// group is stored or changed).
    #[serde(default)]
    pub gmt_modifier: Option<i64>,
}

fn default_status() -> String {
    GROUP_STATUS_ACTIVE.to_owned()
}

impl Group {
    /// An `ACTIVE` group with no subject, description or picture.
    pub fn new(
        cust_space_id: impl Into<String>,
        business_number: impl Into<String>,
        group_id: impl Into<String>,
    ) -> Self {
        Group {
            cust_space_id: cust_space_id.into(),
            business_number: business_number.into(),
            group_id: group_id.into(),
            subject: None,
            description: None,
            profile_picture_file: None,
            group_status: default_status(),
            invite_link: None,
            gmt_modifier: None,
        }
    }
    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
    /// Sets the profile picture URL.
    pub fn profile_picture_file(mut self, url: impl Into<String>) -> Self {
        self.profile_picture_file = Some(url.into());
        self
    }
    /// Sets the status.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.group_status = status.into();
        self
    }
    /// Sets the invite link.
    pub fn invite_link(mut self, link: impl Into<String>) -> Self {
        self.invite_link = Some(link.into());
        self
    }

    /// Checks the keys and limits. The error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("custSpaceId", &self.cust_space_id),
            ("businessNumber", &self.business_number),
            ("groupId", &self.group_id),
            ("groupStatus", &self.group_status),
        ] {
            if value.is_empty() {
                return Err(format!("{name} must not be empty"));
            }
        }
        if let Some(subject) = &self.subject
            && subject.chars().count() > MAX_SUBJECT_CHARS
        {
            return Err(format!(
                "subject must be at most {MAX_SUBJECT_CHARS} characters"
            ));
        }
        if let Some(description) = &self.description
            && description.chars().count() > MAX_DESCRIPTION_CHARS
        {
            return Err(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> GroupId {
        (
            self.cust_space_id.clone(),
            self.business_number.clone(),
            self.group_id.clone(),
        )
    }
}

/// (`custSpaceId`, `businessNumber`, `groupId`).
pub(crate) type GroupId = (String, String, String);

/// A change to a group from outside the API (`POST /_sim/groups`): the keys, plus the fields to
/// set. A field that is absent stays as it is; `null` clears it. Creates the group when it does
/// not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupEdit {
    pub cust_space_id: String,
    pub business_number: String,
    pub group_id: String,
    /// New `Subject` (`null` clears).
    #[serde(default, deserialize_with = "present")]
    pub subject: Option<Option<String>>,
    /// New `Description` (`null` clears).
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    /// New `ProfilePictureFile` (`null` clears).
    #[serde(default, deserialize_with = "present")]
    pub profile_picture_file: Option<Option<String>>,
    #[serde(default)]
    pub group_status: Option<String>,
    /// New `InviteLink` (`null` clears).
    #[serde(default, deserialize_with = "present")]
    pub invite_link: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl GroupEdit {
    pub(crate) fn apply(self, group: &mut Group) {
        if let Some(v) = self.subject {
            group.subject = v;
        }
        if let Some(v) = self.description {
            group.description = v;
        }
        if let Some(v) = self.profile_picture_file {
            group.profile_picture_file = v;
        }
        if let Some(v) = self.group_status {
            group.group_status = v;
        }
        if let Some(v) = self.invite_link {
            group.invite_link = v;
        }
    }
}
