//! Producer ids: handed out in blocks whose end is durable before the first
//! id of the block is used, so no id is ever handed out twice, even across
//! crashes (`meta/producer_ids.json`).

use std::path::Path;

use crate::LogError;

/// Producer ids are handed out from blocks; a block's end is made durable
/// before its first id is used, so a restart continues after it.
#[derive(Debug)]
pub(crate) struct ProducerIdBlock {
    next: i64,
    end: i64,
}

const PRODUCER_ID_FILE: &str = "producer_ids.json";
const PRODUCER_ID_BLOCK: i64 = 1000;

impl ProducerIdBlock {
    pub(crate) fn load(meta_dir: &Path) -> Result<Self, LogError> {
        let path = meta_dir.join(PRODUCER_ID_FILE);
        let end = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("next_block")?.as_i64())
                .ok_or_else(|| LogError::Metadata {
                    path: path.clone(),
                    reason: "no next_block".to_string(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(LogError::Io { path, source }),
        };
        Ok(ProducerIdBlock { next: end, end })
    }

    pub(crate) fn allocate(
        &mut self,
        storage: &dyn strata_wal::Storage,
        meta_dir: &Path,
    ) -> Result<i64, LogError> {
        if self.next >= self.end {
            let end = self.next + PRODUCER_ID_BLOCK;
            let bytes = format!("{{\"next_block\": {end}}}\n");
            crate::topic::write_atomically(storage, meta_dir, PRODUCER_ID_FILE, bytes.as_bytes())?;
            self.end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}
