//! The key-value store's layout: keys encoded into znode names, JSON values and size limits.
//!
//! Every key `k` lives at `<root>/kv/<enc(k)>` and its lock at `<root>/locks/kv/<enc(k)>`, where
//! `enc` percent-encodes every byte outside `[A-Za-z0-9_-]`. The encoding is injective and never
//! yields `.`/`..` or a `/`, so any key is a single, valid znode name.
//!
//! # Tombstones: a key's version never restarts
//!
//! ZooKeeper restarts a znode's data version at 0 when the znode is deleted and created again,
//! and a `check` op compares versions only. A "read at version v, commit with check v" scheme
//! would then miss a delete + re-create in between (a lost update). So zktx never deletes a value
//! znode: deleting a key writes a *tombstone* (empty data, which is never valid JSON) and bumps
//! the version like any write. A key is absent when it has no znode or holds a tombstone
//! ([`Stored`]). Tombstones are removed only by [`crate::Store::compact_tombstones`], in two
//! phases that no transaction can outlive:
//!
//! 1. A tombstone older than the horizon is *marked*: its data becomes [`COMPACTING`], which
//!    bumps its version. A transaction that read the tombstone before now fails its version
//!    check, whatever happens to the key later.
//! 2. A marked tombstone whose mark is older than the horizon is deleted. Every transaction that
//!    read the unmarked tombstone started before the mark, so it is older than the horizon
//!    (> [`MAX_TRANSACTION_AGE`]) and can no longer commit. A transaction that reads a *marked*
//!    tombstone first turns it back into a plain tombstone (a version-checked write that bumps
//!    the version again and restarts its age), so what it read cannot be deleted under it.
//!
//! A key re-created after its tombstone was removed restarts at version 0; no transaction that
//! read any earlier version of it can still commit. See README, "Versions never restart".

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::IgnoredAny;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// The longest key (and transaction id) accepted, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The largest stored value, in bytes of JSON text. ZooKeeper refuses requests over its
/// `jute.maxbuffer` (1 MiB by default, including the path and the request header); values are
/// kept safely below that so a write never half-fails on the server.
pub const MAX_VALUE_BYTES: usize = 1_000_000;

/// The data of a deleted key's znode: empty, which no JSON text is.
pub const TOMBSTONE: &[u8] = b"";

/// The data of a tombstone that compaction marked for removal (phase 1): not JSON either.
pub const COMPACTING: &[u8] = b"\0zktx:compacting";

/// The longest a transaction may take from its first read to its commit. Past it the commit is
/// refused (`CONFLICT`, re-run with fresh reads): a tombstone it read may have been compacted and
/// the key re-created at version 0 meanwhile, which its version check could not see.
pub const MAX_TRANSACTION_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// The smallest horizon [`crate::Store::compact_tombstones`] accepts: well above
/// [`MAX_TRANSACTION_AGE`] plus the longest a request can stay in flight (a session timeout,
/// at most 40 s with ZooKeeper's defaults), plus clock-rate drift.
pub const MIN_COMPACTION_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The largest request zktx sends, in bytes (estimated conservatively). ZooKeeper drops the
/// connection of a client whose request exceeds `jute.maxbuffer` (1 MiB by default).
pub const MAX_REQUEST_BYTES: usize = 1_040_000;

/// Bytes of paths one multi-read may carry; larger read sets are split into several.
pub const MAX_READ_BATCH_BYTES: usize = 512 * 1024;

/// A generous per-operation overhead of a multi request (header, lengths, version, ACL).
pub const OP_OVERHEAD_BYTES: usize = 64;

/// What a key's value znode holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// No znode: the key was never written (or its tombstone was compacted).
    Missing,
    /// A tombstone at this znode version: the key was deleted.
    Tombstone(i32),
    /// A tombstone marked for removal by compaction, at this version: the key is absent. A
    /// transaction must not rely on it (it may be deleted once its mark is old enough): it
    /// turns it back into a plain tombstone first.
    Compacting(i32),
    /// Data that zktx did not write (not JSON), at this znode version: written by another
    /// client. Reading it as a value is `INVALID_ARGUMENT`; writing or deleting the key replaces
    /// it like any value.
    Foreign(i32),
    /// An *ephemeral* znode that another client created at the key's path, at this version. zktx
    /// neither reads nor writes it: it vanishes with its owner's session, and the key's version
    /// would then restart under any transaction that relied on it.
    Ephemeral(i32),
    /// A value at this znode version.
    Value(JsonValue, i32),
}

impl Stored {
    /// Interprets a value znode's data and version: a tombstone, a marked tombstone, JSON, or
    /// anything else as [`Stored::Foreign`].
    pub fn from_znode(data: Vec<u8>, version: i32) -> Self {
        Self::from_data(data, version)
    }

    /// Interprets a value znode from its data and stat (an ephemeral node is [`Stored::Ephemeral`]).
    pub fn from_stat(data: Vec<u8>, stat: &zookeeper_client::Stat) -> Self {
        if stat.ephemeral_owner != 0 {
            return Stored::Ephemeral(stat.version);
        }
        Self::from_data(data, stat.version)
    }

    fn from_data(data: Vec<u8>, version: i32) -> Self {
        if data.is_empty() {
            return Stored::Tombstone(version);
        }
        if data == COMPACTING {
            return Stored::Compacting(version);
        }
        match JsonValue::from_stored(data) {
            Ok(v) => Stored::Value(v, version),
            Err(_) => Stored::Foreign(version),
        }
    }

    /// The value, `None` when the key is absent (or holds foreign data: see [`Stored::decoded`]).
    pub fn value(&self) -> Option<&JsonValue> {
        match self {
            Stored::Value(v, _) => Some(v),
            _ => None,
        }
    }

    /// The value as a reader sees it: `None` when absent.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for data not written by zktx (the key can still be overwritten).
    pub fn decoded(&self, key: &str) -> Result<Option<&JsonValue>> {
        match self {
            Stored::Foreign(_) => Err(Error::invalid(format!(
                "key {key:?} holds data that is not JSON (written by another client): it cannot be read as a value; set or delete the key to replace it"
            ))),
            Stored::Ephemeral(_) => Err(ephemeral(key)),
            other => Ok(other.value()),
        }
    }

    /// Refuses to write over what this holds (an ephemeral node of another session).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for [`Stored::Ephemeral`].
    pub fn writable(&self, key: &str) -> Result<()> {
        match self {
            Stored::Ephemeral(_) => Err(ephemeral(key)),
            _ => Ok(()),
        }
    }

    /// The znode version, `None` when there is no znode.
    pub fn znode_version(&self) -> Option<i32> {
        match self {
            Stored::Missing => None,
            Stored::Tombstone(v) | Stored::Compacting(v) | Stored::Foreign(v) | Stored::Ephemeral(v) | Stored::Value(_, v) => Some(*v),
        }
    }

    /// Whether the key holds something (a value, zktx's or foreign).
    pub fn exists(&self) -> bool {
        matches!(self, Stored::Value(..) | Stored::Foreign(_) | Stored::Ephemeral(_))
    }
}

fn ephemeral(key: &str) -> Error {
    Error::invalid(format!(
        "key {key:?} is an ephemeral znode that another client created: zktx neither reads nor writes it (it would vanish with that client's session and the key's version restart); delete it with that client"
    ))
}

/// Bytes that stay as they are in a znode name; everything else becomes `%XX`.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

/// The default root znode of zktx's data.
pub const DEFAULT_ROOT: &str = "/zktx";

/// Paths of keys and their locks under one root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: String,
    values: String,
    locks: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new(DEFAULT_ROOT)
    }
}

impl Layout {
    /// A layout under `root` (an absolute znode path such as `/zktx`).
    pub fn new(root: &str) -> Self {
        let root = root.trim_end_matches('/');
        Layout { root: root.to_string(), values: format!("{root}/kv"), locks: format!("{root}/locks/kv") }
    }

    /// The root of zktx's own tree (`/zktx` by default).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The directory holding every key's value node.
    pub fn values_dir(&self) -> String {
        self.values.clone()
    }

    /// A node directly under the root (e.g. the transaction-id markers' directory).
    pub fn root_child(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }

    /// The znode holding `key`'s value.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an empty key or one over [`MAX_KEY_BYTES`].
    pub fn value_path(&self, key: &str) -> Result<String> {
        Ok(format!("{}/{}", self.values, encode_key(key)?))
    }

    /// The lock directory that serializes writers of `key` in `executeTransaction`.
    pub fn lock_path(&self, key: &str) -> Result<String> {
        Ok(format!("{}/{}", self.locks, encode_key(key)?))
    }
}

/// Encodes a key into one znode name.
///
/// # Errors
/// `INVALID_ARGUMENT` for an empty key or one over [`MAX_KEY_BYTES`].
pub fn encode_key(key: &str) -> Result<String> {
    encode_name("key", key)
}

/// Encodes a key, or a transaction id (`what` names it in errors), into one znode name.
///
/// # Errors
/// `INVALID_ARGUMENT` for an empty name or one over [`MAX_KEY_BYTES`].
pub fn encode_name(what: &str, name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} must be a non-empty string")));
    }
    if name.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!("{what} is {} bytes; the limit is {MAX_KEY_BYTES}", name.len())));
    }
    Ok(utf8_percent_encode(name, KEY_ESCAPES).to_string())
}

/// Decodes a znode name made by [`encode_key`].
pub fn decode_key(name: &str) -> Result<String> {
    percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid(format!("{name:?} is not an encoded key")))
}

/// A JSON document as stored in a znode: valid JSON text within [`MAX_VALUE_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonValue(String);

impl JsonValue {
    /// Validates JSON text (as made by `JSON.stringify`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the text is not JSON, `TOO_LARGE` over [`MAX_VALUE_BYTES`].
    pub fn from_text(text: String) -> Result<Self> {
        check_size(text.len())?;
        serde_json::from_str::<IgnoredAny>(&text).map_err(|e| Error::invalid(format!("value is not valid JSON: {e}")))?;
        Ok(JsonValue(text))
    }

    /// Serializes any serde value.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when serde cannot encode it, `TOO_LARGE` over [`MAX_VALUE_BYTES`].
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let text = serde_json::to_string(value).map_err(|e| Error::invalid(format!("value cannot be encoded as JSON: {e}")))?;
        check_size(text.len())?;
        Ok(JsonValue(text))
    }

    /// Reads a stored znode's bytes.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when the node does not hold UTF-8 JSON (written by something else).
    pub fn from_stored(bytes: Vec<u8>) -> Result<Self> {
        let text = String::from_utf8(bytes).map_err(|_| Error::invalid("stored value is not UTF-8 JSON"))?;
        serde_json::from_str::<IgnoredAny>(&text).map_err(|e| Error::invalid(format!("stored value is not JSON: {e}")))?;
        Ok(JsonValue(text))
    }

    /// Deserializes into any serde type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.0).map_err(|e| Error::invalid(format!("stored value does not fit the requested type: {e}")))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn check_size(len: usize) -> Result<()> {
    if len > MAX_VALUE_BYTES {
        return Err(Error::TooLarge(format!("value is {len} bytes of JSON; the limit is {MAX_VALUE_BYTES}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_single_safe_znode_names() -> Result<()> {
        for key in ["foo", ".", "..", "a/b", "ключ", "a b%", "x\u{0}y", "-_"] {
            let enc = encode_key(key)?;
            assert!(!enc.contains('/') && enc != "." && enc != "..", "{key:?} -> {enc:?}");
            assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-%".contains(&b)));
            assert_eq!(decode_key(&enc)?, key);
        }
        assert_eq!(encode_key("foo")?, "foo");
        Ok(())
    }

    #[test]
    fn stored_data_is_told_apart() {
        assert_eq!(Stored::from_znode(Vec::new(), 3), Stored::Tombstone(3));
        assert_eq!(Stored::from_znode(COMPACTING.to_vec(), 4), Stored::Compacting(4));
        assert_eq!(Stored::from_znode(b"hello".to_vec(), 5), Stored::Foreign(5));
        assert!(matches!(Stored::from_znode(b"[1]".to_vec(), 6), Stored::Value(_, 6)));
        assert_eq!(Stored::Foreign(5).decoded("k").unwrap_err().code(), "INVALID_ARGUMENT");
        assert!(Stored::Foreign(5).exists() && !Stored::Compacting(4).exists());
        assert!(serde_json::from_slice::<IgnoredAny>(COMPACTING).is_err());
    }

    #[test]
    fn bad_keys_are_invalid_arguments() {
        assert_eq!(encode_key("").unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(encode_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().code(), "INVALID_ARGUMENT");
        assert!(encode_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn values_are_checked_json_within_the_limit() -> Result<()> {
        assert!(JsonValue::from_text("{\"a\":1}".into()).is_ok());
        assert_eq!(JsonValue::from_text("{".into()).unwrap_err().code(), "INVALID_ARGUMENT");
        let big = format!("\"{}\"", "x".repeat(MAX_VALUE_BYTES));
        assert_eq!(JsonValue::from_text(big).unwrap_err().code(), "TOO_LARGE");
        assert_eq!(JsonValue::from_serialize(&41)?.parse::<i64>()?, 41);
        Ok(())
    }
}
