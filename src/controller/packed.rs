//! JSON text kept compressed in memory.
//!
//! The watch cache keeps every object's spec and status, and the per-object memory the status
//! last written, as JSON text for as long as the object exists. Most of that text is the same
//! from one object to the next: field names, condition types and reasons, the operator's own
//! messages, timestamps that differ only in their last digits. [`Packed`] keeps it as an LZ4
//! block compressed against [`DICTIONARY`], a sample of typical ChatGroup text, so that only
//! what differs costs memory: a typical status of about 900 bytes takes about 200.
//!
//! Any text round-trips, whatever the dictionary holds; the dictionary only decides how small
//! the result is. A test keeps it in step with the field names the operator writes.

use std::fmt;

/// Typical ChatGroup spec and status text: the compressor refers to it instead of storing the
/// same bytes again for every object. It must never change within a running process (text is
/// unpacked with the dictionary it was packed with); between processes it may change freely,
/// since nothing packed is ever stored outside memory.
pub const DICTIONARY: &str = concat!(
    r#"{"custSpaceId":"cams-","businessNumber":"86","groupId":"","channelType":"WHATSAPP","#,
    r#""subject":"","description":"","profilePictureFile":"https://","#,
    r#""credentials":{"secretRef":{"name":"cams-credentials"},"accessKeyIdKey":"","#,
    r#""accessKeySecretKey":"","securityTokenKey":""},"region":"ap-southeast-1","#,
    r#""endpoint":"http://","managementPolicy":"Manage","driftPolicy":"Correct","#,
    r#""resyncInterval":"10m","creationPolicy":"Adopt","deletionPolicy":"Orphan","#,
    r#""inviteLink":"Unmanaged"}"#,
    r#"{"observedGeneration":1,"groupId":"","inviteLink":"https://chat.whatsapp.com/","#,
    r#""conditions":[{"type":"Ready","status":"True","#,
    r#""reason":"Synced","message":"the group matches the spec","observedGeneration":1,"#,
    r#""lastTransitionTime":"2026-01-01T00:00:00Z"},{"type":"Synced","status":"True","#,
    r#""reason":"UpToDate","message":"UpdateChatGroup set subject, description "#,
    r#"(RequestId 00000000-0000-0000-0000-000000000000)","observedGeneration":1,"#,
    r#""lastTransitionTime":"2026-01-01T00:00:00Z"},{"type":"Reconciling","status":"False","#,
    r#""reason":"UpdateSucceeded","message":"","observedGeneration":1,"#,
    r#""lastTransitionTime":"2026-01-01T00:00:00Z"}],"#,
    r#""lastRequest":{"action":"UpdateChatGroup","requestId":"","code":"OK","message":"OK","#,
    r#""success":true,"result":1,"accessDeniedDetail":"","httpStatus":200,"#,
    r#""time":"2026-01-01T00:00:00Z"},"#,
    r#""appliedHash":"sha256:","lastSyncTime":"2026-01-01T00:00:00Z","#,
    r#""observed":{"subject":"","description":"","profilePictureFile":"","#,
    r#""groupStatus":"ACTIVE","time":"2026-01-01T00:00:00Z"},"pendingChanges":[{"field":"subject","observed":"","desired":""}],"#,
    r#""retry":{"attempts":1,"nextAttemptTime":"2026-01-01T00:00:00Z"}}"#,
);

/// JSON text, compressed (see the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

impl Packed {
    /// `text`, compressed.
    pub fn pack(text: &str) -> Self {
        let packed = lz4_flex::block::compress_prepend_size_with_dict(
            text.as_bytes(),
            DICTIONARY.as_bytes(),
        );
        Packed(packed.into_boxed_slice())
    }

    /// The text, back. Fails only if the bytes were damaged in memory, which the caller then
    /// reports like any other unreadable text.
    pub fn unpack(&self) -> Result<String, String> {
        let bytes =
            lz4_flex::block::decompress_size_prepended_with_dict(&self.0, DICTIONARY.as_bytes())
                .map_err(|err| format!("the text kept in memory cannot be unpacked: {err}"))?;
        let expected = lz4_flex::block::uncompressed_size(&self.0).map(|(size, _)| size);
        if expected.ok() != Some(bytes.len()) {
            return Err("the text kept in memory is shorter than when it was packed".to_owned());
        }
        String::from_utf8(bytes)
            .map_err(|_| "the text kept in memory is not UTF-8 once unpacked".to_owned())
    }
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unpack() {
            Ok(text) => f.debug_tuple("Packed").field(&text).finish(),
            Err(problem) => f.debug_tuple("Packed").field(&problem).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatGroupSpec, ChatGroupStatus};

    #[test]
    fn any_text_round_trips() {
        for text in [
            "",
            "{}",
            DICTIONARY,
            "déjà vu, 日本語, \u{1F600}",
            &"x".repeat(100_000),
        ] {
            assert_eq!(Packed::pack(text).unpack().as_deref(), Ok(text));
        }
    }

    #[test]
    fn damaged_bytes_are_reported_not_panicked_on() {
        let text = "the group matches the spec";
        let mut packed = Packed::pack(text);
        let truncated = Packed(packed.0[..5].to_vec().into_boxed_slice());
        assert!(truncated.unpack().is_err());
        // The first byte after the length is the first sequence's token.
        packed.0[4] = 0xff;
        assert_ne!(packed.unpack().as_deref(), Ok(text));
    }

    /// The dictionary holds the field names the operator writes today: every key of a status
    /// and of a spec with every field set appears in it, so a renamed field fails here instead
    /// of silently costing memory.
    #[test]
    fn the_dictionary_knows_every_field_name() {
        fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        out.push(key.clone());
                        keys(value, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
                _ => {}
            }
        }
        let spec: ChatGroupSpec = serde_json::from_str(
            r#"{"custSpaceId":"c","businessNumber":"1","groupId":"g","subject":"s",
                "description":"d","profilePictureFile":"https://p","endpoint":"http://e",
                "credentials":{"secretRef":{"name":"n"},"accessKeyIdKey":"a",
                "accessKeySecretKey":"b","securityTokenKey":"t"}}"#,
        )
        .expect("spec");
        let status: ChatGroupStatus = serde_json::from_str(
            &DICTIONARY[DICTIONARY.find(r#"{"observedGeneration""#).expect("status")..],
        )
        .expect("the dictionary's status sample is a status");
        let mut names = Vec::new();
        keys(&serde_json::to_value(&spec).expect("json"), &mut names);
        keys(&serde_json::to_value(&status).expect("json"), &mut names);
        for name in names {
            assert!(
                DICTIONARY.contains(&format!("\"{name}\":")),
                "{name} is not in the dictionary"
            );
        }
    }

    #[test]
    fn a_typical_status_shrinks_to_under_a_third() {
        let status = r#"{"observedGeneration":3,"conditions":[{"type":"Ready","status":"True","reason":"Synced","message":"UpdateChatGroup set subject, description (RequestId 3CD57EC1-B07C-40F9-949D-4E002FC16B9C)","observedGeneration":3,"lastTransitionTime":"2026-11-30T16:11:43Z"},{"type":"Synced","status":"True","reason":"UpdateSucceeded","message":"UpdateChatGroup set subject, description (RequestId 3CD57EC1-B07C-40F9-949D-4E002FC16B9C)","observedGeneration":3,"lastTransitionTime":"2026-11-30T16:11:43Z"}],"lastRequest":{"action":"UpdateChatGroup","requestId":"3CD57EC1-B07C-40F9-949D-4E002FC16B9C","code":"OK","message":"OK","success":true,"result":1,"httpStatus":200,"time":"2026-11-30T16:11:43Z"},"appliedHash":"sha256:4c86c60187c6c724ed31572af729dbb3b02968c3b318ea229550d6fcbb62a0c3","lastSyncTime":"2026-11-30T16:11:43Z","observed":{"subject":"Team A","groupStatus":"ACTIVE","time":"2026-11-30T16:11:43Z"}}"#;
        let packed = Packed::pack(status);
        assert!(
            packed.0.len() * 3 < status.len(),
            "{} bytes packed to {}",
            status.len(),
            packed.0.len()
        );
    }
}
