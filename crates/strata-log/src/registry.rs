//! The topics the broker knows, by name and by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::config::TopicConfig;
use crate::partition::PartitionLog;
use crate::topic::TopicId;

/// A topic: its identity, configuration and partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: TopicId,
    config: RwLock<TopicConfig>,
    partitions: RwLock<Vec<Arc<PartitionLog>>>,
}

impl Topic {
    pub fn new(
        name: String,
        id: TopicId,
        config: TopicConfig,
        partitions: Vec<Arc<PartitionLog>>,
    ) -> Self {
        Topic {
            name,
            id,
            config: RwLock::new(config),
            partitions: RwLock::new(partitions),
        }
    }

    pub fn config(&self) -> TopicConfig {
        read(&self.config).clone()
    }

    pub fn set_config(&self, config: TopicConfig) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        read(&self.partitions).clone()
    }

    pub fn partition(&self, index: i32) -> Option<Arc<PartitionLog>> {
        let index = usize::try_from(index).ok()?;
        read(&self.partitions).get(index).cloned()
    }

    pub fn partition_count(&self) -> i32 {
        i32::try_from(read(&self.partitions).len()).unwrap_or(i32::MAX)
    }

    pub fn add_partitions(&self, more: Vec<Arc<PartitionLog>>) {
        self.partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(more);
    }
}

#[derive(Debug, Default)]
struct Maps {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<TopicId, Arc<Topic>>,
}

/// Every live topic.
#[derive(Debug, Default)]
pub struct Registry {
    maps: RwLock<Maps>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    pub fn insert(&self, topic: Arc<Topic>) {
        let mut maps = self
            .maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.by_id.insert(topic.id, Arc::clone(&topic));
        maps.by_name.insert(topic.name.clone(), topic);
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Topic>> {
        let mut maps = self
            .maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let topic = maps.by_name.remove(name)?;
        maps.by_id.remove(&topic.id);
        Some(topic)
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.maps).by_name.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: TopicId) -> Option<Arc<Topic>> {
        read(&self.maps).by_id.get(&id).cloned()
    }

    /// All topics, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        read(&self.maps).by_name.values().cloned().collect()
    }

    pub fn partition(&self, id: TopicId, index: i32) -> Option<Arc<PartitionLog>> {
        self.topic_by_id(id)?.partition(index)
    }
}
