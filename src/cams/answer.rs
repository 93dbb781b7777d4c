//! The JSON envelope of an Alibaba Cloud RPC answer (CAMS, and STS for the operator's own
//! identity), read straight from the body bytes.
//!
//! The body is read once, into exactly the fields the client uses; everything else (unknown
//! fields, values of an unexpected type, `Data.List` items past [`MAX_LIST_ITEMS`]) is skipped
//! without being kept. Reading never builds a tree of the whole document, so the memory it takes
//! is bounded by the size of the body, whatever its shape: a body of a million empty objects
//! costs no more than a body of one long string.
//!
//! Every field is optional and tolerant: a text may arrive as a string, a number or a boolean;
//! an integer as a number or a numeric string; a flag as a boolean or `"true"`/`"false"`. A value
//! of another type counts as absent. Only a body that is not a JSON object at all is refused.
//! When a name occurs twice, the last value wins.

use std::fmt;

use serde::Deserialize;

use super::SecretString;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most `Data.List` items read from one page. CAMS pages hold at most 100 items; anything past
/// this is skipped unread.
pub const MAX_LIST_ITEMS: usize = 1000;

/// The envelope of one answer, as far as the client reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    pub recommend: Option<String>,
    pub access_denied_detail: Option<String>,
    pub success: Option<bool>,
    pub result: Option<i64>,
    pub data: Option<Data>,
    /// `Credentials` of STS `AssumeRoleWithOIDC`.
    pub credentials: Option<IssuedCredentials>,
    /// `UniqueCode` of `AddChatGroup`.
    pub unique_code: Option<String>,
    /// `InviteLink` of `AddChatGroupInviteLink`.
    pub invite_link: Option<String>,
}

/// `Credentials` of an STS answer. `Debug` never shows the secret or the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IssuedCredentials {
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<SecretString>,
    pub security_token: Option<SecretString>,
    pub expiration: Option<String>,
}

/// `Data` of `ListChatGroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Data {
    pub total: Option<u64>,
    pub list: Vec<Item>,
}

/// One `Data.List` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Item {
    pub group_id: Option<String>,
    pub business_number: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub profile_picture_file: Option<String>,
    pub group_status: Option<String>,
    pub invite_link: Option<String>,
}

/// Reads `body` as the envelope; `None` when it is not a JSON object (or not JSON at all).
pub(crate) fn parse(body: &[u8]) -> Option<Envelope> {
    serde_json::from_slice::<Envelope>(body).ok()
}

/// The field names the client reads, at any level; every other name is [`Name::Other`].
/// Matching names without allocating keeps unknown keys free.
enum Name {
    Code,
    Message,
    RequestId,
    HostId,
    Recommend,
    AccessDeniedDetail,
    Success,
    Result,
    Data,
    Total,
    List,
    GroupId,
    BusinessNumber,
    Subject,
    Description,
    ProfilePictureFile,
    GroupStatus,
    InviteLink,
    Credentials,
    AccessKeyId,
    AccessKeySecret,
    SecurityToken,
    Expiration,
    UniqueCode,
    Other,
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name, E> {
                Ok(match name {
                    "Code" => Name::Code,
                    "Message" => Name::Message,
                    "RequestId" => Name::RequestId,
                    "HostId" => Name::HostId,
                    "Recommend" => Name::Recommend,
                    "AccessDeniedDetail" => Name::AccessDeniedDetail,
                    "Success" => Name::Success,
                    "Result" => Name::Result,
                    "Data" => Name::Data,
                    "Total" => Name::Total,
                    "List" => Name::List,
                    "GroupId" => Name::GroupId,
                    "BusinessNumber" => Name::BusinessNumber,
                    "Subject" => Name::Subject,
                    "Description" => Name::Description,
                    "ProfilePictureFile" => Name::ProfilePictureFile,
                    "GroupStatus" => Name::GroupStatus,
                    "InviteLink" => Name::InviteLink,
                    "Credentials" => Name::Credentials,
                    "AccessKeyId" => Name::AccessKeyId,
                    "AccessKeySecret" => Name::AccessKeySecret,
                    "SecurityToken" => Name::SecurityToken,
                    "Expiration" => Name::Expiration,
                    "UniqueCode" => Name::UniqueCode,
                    _ => Name::Other,
                })
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// Visitor methods that read every scalar (and `null`) as `Ok($absent)`.
macro_rules! absent_scalars {
    ($absent:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}

/// Reads an array by skipping its elements, unkept.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads an object by skipping its entries, unkept.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Any JSON value, kept only when it is a scalar.
enum Scalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// `null`, an array or an object.
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Uint(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                skip_seq(seq).map(|()| Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                skip_map(map).map(|()| Scalar::Other)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Floats at or above this magnitude are not trusted to be exact integers.
const MAX_EXACT_FLOAT: f64 = 9.0e15;

impl Scalar {
    /// A string, or a number or boolean written as text.
    fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Int(n) => Some(n.to_string()),
            Scalar::Uint(n) => Some(n.to_string()),
            Scalar::Float(f) => float_text(f),
            Scalar::Other => None,
        }
    }

    /// An integer: a number without a fraction (within the range a float holds exactly), or
    /// a numeric string.
    fn integer(self) -> Option<i64> {
        match self {
            Scalar::Int(n) => Some(n),
            Scalar::Uint(n) => i64::try_from(n).ok(),
            Scalar::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < MAX_EXACT_FLOAT => {
                // In range and without a fraction: the conversion is exact.
                #[allow(clippy::cast_possible_truncation)]
                Some(f as i64)
            }
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A boolean, or `"true"`/`"false"` in any case.
    fn flag(self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(b),
            Scalar::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// A float as JSON writes it (`1.5`, `1e300`); `None` for the values JSON cannot hold.
fn float_text(v: f64) -> Option<String> {
    serde_json::Number::from_f64(v).map(|n| n.to_string())
}

/// `AccessDeniedDetail`: a non-empty string as it is, any other value (but `null`) as compact
/// JSON text.
struct Detail(Option<String>);

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DetailVisitor;
        impl<'de> Visitor<'de> for DetailVisitor {
            type Value = Detail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Detail, E> {
                Ok(Detail((!v.is_empty()).then(|| v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Detail, E> {
                Ok(Detail(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Detail, E> {
                Ok(Detail(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Detail, E> {
                self.compact(|out| CompactVisitor { out }.visit_bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Detail, E> {
                self.compact(|out| CompactVisitor { out }.visit_i64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Detail, E> {
                self.compact(|out| CompactVisitor { out }.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Detail, E> {
                self.compact(|out| CompactVisitor { out }.visit_f64(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Detail, A::Error> {
                self.compact(|out| CompactVisitor { out }.visit_seq(seq))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Detail, A::Error> {
                self.compact(|out| CompactVisitor { out }.visit_map(map))
            }
        }
        impl DetailVisitor {
            fn compact<E>(
                self,
                write: impl FnOnce(&mut String) -> Result<(), E>,
            ) -> Result<Detail, E> {
                let mut out = String::new();
                write(&mut out)?;
                Ok(Detail(Some(out)))
            }
        }
        deserializer.deserialize_any(DetailVisitor)
    }
}

/// Appends the value it visits to `out` as compact JSON, never longer than the text it was
/// read from by more than a byte per number. Nesting is bounded by the JSON reader's own depth
/// limit.
struct CompactVisitor<'a> {
    out: &'a mut String,
}

impl<'de> de::DeserializeSeed<'de> for CompactVisitor<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CompactVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.out.push_str(&short_float(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        push_json_string(self.out, v);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            if seq
                .next_element_seed(CompactVisitor { out: self.out })?
                .is_none()
            {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push('{');
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if !first {
                self.out.push(',');
            }
            first = false;
            push_json_string(self.out, &key);
            self.out.push(':');
            map.next_value_seed(CompactVisitor { out: self.out })?;
        }
        self.out.push('}');
        Ok(())
    }
}

/// The shorter of a float's plain and exponent forms (`9e9`, not `9000000000.0`), both of which
/// read back as the same float; `null` for the values JSON cannot hold.
fn short_float(v: f64) -> String {
    if !v.is_finite() {
        return "null".to_owned();
    }
    let plain = v.to_string();
    let exponent = format!("{v:e}");
    if exponent.len() < plain.len() {
        exponent
    } else {
        plain
    }
}

/// `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    // Serialising a string to JSON cannot fail; an empty literal stands in if it ever did.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CAMS response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                let mut envelope = Envelope::default();
                while let Some(name) = map.next_key::<Name>()? {
                    match name {
                        Name::Code => envelope.code = map.next_value::<Scalar>()?.text(),
                        Name::Message => envelope.message = map.next_value::<Scalar>()?.text(),
                        Name::RequestId => envelope.request_id = map.next_value::<Scalar>()?.text(),
                        Name::HostId => envelope.host_id = map.next_value::<Scalar>()?.text(),
                        Name::Recommend => envelope.recommend = map.next_value::<Scalar>()?.text(),
                        Name::AccessDeniedDetail => {
                            envelope.access_denied_detail = map.next_value::<Detail>()?.0;
                        }
                        Name::Success => envelope.success = map.next_value::<Scalar>()?.flag(),
                        Name::Result => envelope.result = map.next_value::<Scalar>()?.integer(),
                        Name::Data => envelope.data = map.next_value::<MaybeData>()?.0,
                        Name::Credentials => {
                            envelope.credentials = map.next_value::<MaybeCredentials>()?.0;
                        }
                        Name::UniqueCode => {
                            envelope.unique_code = map.next_value::<Scalar>()?.text();
                        }
                        Name::InviteLink => {
                            envelope.invite_link = map.next_value::<Scalar>()?.text();
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// `Data`, when it is an object.
struct MaybeData(Option<Data>);

impl<'de> Deserialize<'de> for MaybeData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = MaybeData;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeData, A::Error> {
                let mut data = Data::default();
                while let Some(name) = map.next_key::<Name>()? {
                    match name {
                        Name::Total => {
                            data.total = map
                                .next_value::<Scalar>()?
                                .integer()
                                .and_then(|n| u64::try_from(n).ok());
                        }
                        Name::List => data.list = map.next_value::<List>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MaybeData(Some(data)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeData, A::Error> {
                skip_seq(seq).map(|()| MaybeData(None))
            }
            absent_scalars!(MaybeData(None));
        }
        deserializer.deserialize_any(DataVisitor)
    }
}

/// `Data.List`: the objects among its first [`MAX_LIST_ITEMS`] entries; anything but an array
/// is an empty list.
struct List(Vec<Item>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut items = Vec::new();
                let mut seen = 0usize;
                while seen < MAX_LIST_ITEMS {
                    match seq.next_element::<MaybeItem>()? {
                        Some(MaybeItem(Some(item))) => items.push(item),
                        Some(MaybeItem(None)) => {}
                        None => return Ok(List(items)),
                    }
                    seen += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List, A::Error> {
                skip_map(map).map(|()| List(Vec::new()))
            }
            absent_scalars!(List(Vec::new()));
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// One `Data.List` entry, when it is an object.
struct MaybeItem(Option<Item>);

impl<'de> Deserialize<'de> for MaybeItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = MaybeItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeItem, A::Error> {
                let mut item = Item::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let slot = match name {
                        Name::GroupId => &mut item.group_id,
                        Name::BusinessNumber => &mut item.business_number,
                        Name::Subject => &mut item.subject,
                        Name::Description => &mut item.description,
                        Name::ProfilePictureFile => &mut item.profile_picture_file,
                        Name::GroupStatus => &mut item.group_status,
                        Name::InviteLink => &mut item.invite_link,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Scalar>()?.text();
                }
                Ok(MaybeItem(Some(item)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeItem, A::Error> {
                skip_seq(seq).map(|()| MaybeItem(None))
            }
            absent_scalars!(MaybeItem(None));
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// `Credentials`, when it is an object. Only strings count: a credential is never a number.
struct MaybeCredentials(Option<IssuedCredentials>);

impl<'de> Deserialize<'de> for MaybeCredentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CredentialsVisitor;
        impl<'de> Visitor<'de> for CredentialsVisitor {
            type Value = MaybeCredentials;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MaybeCredentials, A::Error> {
                let mut issued = IssuedCredentials::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let text = match name {
                        Name::AccessKeyId
                        | Name::AccessKeySecret
                        | Name::SecurityToken
                        | Name::Expiration => match map.next_value::<Scalar>()? {
                            Scalar::Str(text) if !text.is_empty() => Some(text),
                            _ => None,
                        },
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    match name {
                        Name::AccessKeyId => issued.access_key_id = text,
                        Name::AccessKeySecret => {
                            issued.access_key_secret = text.map(SecretString::new);
                        }
                        Name::SecurityToken => issued.security_token = text.map(SecretString::new),
                        _ => issued.expiration = text,
                    }
                }
                Ok(MaybeCredentials(Some(issued)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeCredentials, A::Error> {
                skip_seq(seq).map(|()| MaybeCredentials(None))
            }
            absent_scalars!(MaybeCredentials(None));
        }
        deserializer.deserialize_any(CredentialsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> Envelope {
        parse(body.as_bytes()).expect("an object")
    }

    #[test]
    fn texts_accept_strings_numbers_and_booleans() {
        let e =
            envelope(r#"{"Code":"OK","Message":12,"RequestId":true,"HostId":1.5,"Recommend":[1]}"#);
        assert_eq!(e.code.as_deref(), Some("OK"));
        assert_eq!(e.message.as_deref(), Some("12"));
        assert_eq!(e.request_id.as_deref(), Some("true"));
        assert_eq!(e.host_id.as_deref(), Some("1.5"));
        assert_eq!(e.recommend, None);
    }

    #[test]
    fn integers_and_flags_are_tolerant() {
        for (text, want) in [
            ("1", Some(1)),
            ("\" 2 \"", Some(2)),
            ("3.0", Some(3)),
            ("3.5", None),
            ("\"x\"", None),
            ("1e300", None),
            ("18446744073709551615", None),
            ("-4", Some(-4)),
            ("null", None),
            ("{}", None),
        ] {
            let e = envelope(&format!(r#"{{"Result":{text}}}"#));
            assert_eq!(e.result, want, "{text}");
        }
        for (text, want) in [
            ("true", Some(true)),
            ("\"FALSE\"", Some(false)),
            ("1", None),
            ("\"yes\"", None),
        ] {
            let e = envelope(&format!(r#"{{"Success":{text}}}"#));
            assert_eq!(e.success, want, "{text}");
        }
    }

    #[test]
    fn detail_is_a_string_or_compact_json() {
        for (text, want) in [
            (r#""denied""#, Some("denied")),
            (r#""""#, None),
            ("null", None),
            (
                r#"{ "a" : 1, "b" : [true, null, "x\"y"] }"#,
                Some(r#"{"a":1,"b":[true,null,"x\"y"]}"#),
            ),
            ("[]", Some("[]")),
            ("{}", Some("{}")),
            ("2.5", Some("2.5")),
        ] {
            let e = envelope(&format!(r#"{{"AccessDeniedDetail":{text}}}"#));
            assert_eq!(e.access_denied_detail.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn list_items_are_all_optional_and_non_objects_are_skipped() {
        let e = envelope(
            r#"{"Data":{"Total":"3","List":[{"GroupId":"G1","NewField":[1]},"x",7,{"Subject":"S"}]}}"#,
        );
        let data = e.data.expect("data");
        assert_eq!(data.total, Some(3));
        assert_eq!(data.list.len(), 2);
        assert_eq!(data.list[0].group_id.as_deref(), Some("G1"));
        assert_eq!(data.list[0].subject, None);
        assert_eq!(data.list[1].subject.as_deref(), Some("S"));
        assert_eq!(envelope(r#"{"Data":[1]}"#).data, None);
        let data = envelope(r#"{"Data":{"Total":-1,"List":{}}}"#)
            .data
            .expect("data");
        assert_eq!((data.total, data.list.len()), (None, 0));
    }

    #[test]
    fn list_items_past_the_limit_are_skipped() {
        let body = format!(
            r#"{{"Data":{{"List":[{}]}}}}"#,
            vec!["{}"; MAX_LIST_ITEMS + 5].join(",")
        );
        assert_eq!(
            envelope(&body).data.expect("data").list.len(),
            MAX_LIST_ITEMS
        );
    }

    #[test]
    fn sts_credentials_are_strings_and_never_shown() {
        let e = envelope(
            r#"{"RequestId":"R","Credentials":{"AccessKeyId":"STS.id","AccessKeySecret":"the-secret","SecurityToken":"the-token","Expiration":"2026-11-26T07:00:00Z","Extra":[1]}}"#,
        );
        let issued = e.credentials.expect("credentials");
        assert_eq!(issued.access_key_id.as_deref(), Some("STS.id"));
        assert_eq!(
            issued.access_key_secret.as_ref().map(SecretString::expose),
            Some("the-secret")
        );
        assert_eq!(issued.expiration.as_deref(), Some("2026-11-26T07:00:00Z"));
        let shown = format!("{issued:?}");
        assert!(
            !shown.contains("the-secret") && !shown.contains("the-token"),
            "{shown}"
        );
        let odd = envelope(r#"{"Credentials":{"AccessKeyId":7,"AccessKeySecret":""}}"#)
            .credentials
            .expect("an object");
        assert_eq!((odd.access_key_id, odd.access_key_secret), (None, None));
        assert_eq!(envelope(r#"{"Credentials":"x"}"#).credentials, None);
    }

    #[test]
    fn the_last_of_a_repeated_name_wins() {
        assert_eq!(
            envelope(r#"{"Code":"A","Code":"B"}"#).code.as_deref(),
            Some("B")
        );
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for body in [
            "",
            "[]",
            "\"OK\"",
            "1",
            "null",
            "{",
            "{\"Code\":",
            "\u{fffd}",
        ] {
            assert!(parse(body.as_bytes()).is_none(), "{body:?}");
        }
        assert!(parse(&[0xff, 0xfe]).is_none());
        assert!(parse(b"{\"Code\":\"OK\"} trailing").is_none());
    }
}
