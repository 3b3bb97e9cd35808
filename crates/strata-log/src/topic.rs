//! Topic identity and the crash-safe topic metadata file.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_wal::Storage;

use serde::{Deserialize, Serialize};

use crate::LogError;

/// A topic's 16-byte id (a random UUID), stable for the topic's life. A new
/// topic with an old name gets a new id, so stale WAL entries never reach it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// A fresh random id (UUID version 4 layout).
    pub fn random() -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let mut bytes = [0u8; 16];
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut h = state.build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.write_u32(std::process::id());
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        TopicId(bytes)
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(TopicId(out))
    }
}

/// Checks a topic name as Kafka does: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name == "." || name == ".." {
        return Err(LogError::InvalidTopic(format!(
            "topic name {name:?} is illegal"
        )));
    }
    if name.len() > 249 {
        return Err(LogError::InvalidTopic(format!(
            "topic name is {} characters, over the limit of 249",
            name.len()
        )));
    }
    if !name.chars().all(legal) {
        return Err(LogError::InvalidTopic(format!(
            "topic name {name:?} may only contain ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// One topic as stored in the metadata file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub id: String,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Log start offset per partition (raised by DeleteRecords).
    #[serde(default)]
    pub log_start_offsets: Vec<i64>,
}

/// The format version of `topics.json` this build writes. Version 1 (no
/// `version` key) is read the same way.
pub const META_VERSION: u32 = 2;

fn version_one() -> u32 {
    1
}

/// The whole metadata file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetaFile {
    #[serde(default = "version_one")]
    pub version: u32,
    pub topics: Vec<TopicRecord>,
}

impl Default for MetaFile {
    fn default() -> Self {
        MetaFile {
            version: META_VERSION,
            topics: Vec::new(),
        }
    }
}

/// Where the topic metadata lives, and how it is replaced atomically.
#[derive(Debug)]
pub struct MetaStore {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
}

const META_FILE: &str = "topics.json";

impl MetaStore {
    pub fn new(dir: PathBuf, storage: Arc<dyn Storage>) -> Self {
        MetaStore { dir, storage }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// Reads the metadata, or an empty set on a fresh data dir. A file of
    /// a newer format version is refused.
    pub fn load(&self) -> Result<MetaFile, LogError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let meta: MetaFile =
                    serde_json::from_slice(&bytes).map_err(|e| LogError::Metadata {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if meta.version > META_VERSION {
                    return Err(LogError::UnsupportedFormat {
                        path,
                        reason: format!(
                            "metadata format version {} is newer than this build reads ({META_VERSION})",
                            meta.version
                        ),
                    });
                }
                Ok(meta)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MetaFile::default()),
            Err(source) => Err(LogError::Io { path, source }),
        }
    }

    /// Replaces the metadata: write a temp file, fsync, rename, fsync the directory.
    pub fn save(&self, meta: &MetaFile) -> Result<(), LogError> {
        let bytes = serde_json::to_vec_pretty(meta).map_err(|e| LogError::Metadata {
            path: self.path(),
            reason: e.to_string(),
        })?;
        write_atomically(self.storage.as_ref(), &self.dir, META_FILE, &bytes)
    }
}

/// Writes `name` in `dir` crash-safely: a temp file, synced, renamed over
/// `name`, and the directory synced.
pub fn write_atomically(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dest = dir.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LogError::Io { path, source }
    };
    let file = storage.create(&tmp, false).map_err(io(&tmp))?;
    file.write_all_at(bytes, 0).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    storage.rename(&tmp, &dest).map_err(io(&dest))?;
    strata_wal::sync_dir(storage, dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("bad name!").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn ids_round_trip_and_differ() {
        let a = TopicId::random();
        let b = TopicId::random();
        assert_ne!(a, b);
        assert_eq!(TopicId::from_hex(&a.to_hex()), Some(a));
    }

    #[test]
    fn meta_survives_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::new(dir.path().to_path_buf(), Arc::new(strata_wal::RealStorage));
        assert_eq!(store.load().unwrap(), MetaFile::default());
        let meta = MetaFile {
            version: META_VERSION,
            topics: vec![TopicRecord {
                name: "t".into(),
                id: TopicId::random().to_hex(),
                partitions: 3,
                configs: BTreeMap::new(),
                log_start_offsets: vec![0, 0, 0],
            }],
        };
        store.save(&meta).unwrap();
        assert_eq!(store.load().unwrap(), meta);
    }
}
