//! Client configuration and topic administration shared by every mode.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// Settings every client of a run shares.
#[derive(Debug, Clone)]
pub struct Connection {
    pub bootstrap: String,
    /// Extra librdkafka properties (`-X key=value`), applied last.
    pub properties: Vec<(String, String)>,
}

impl Connection {
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("broker.address.family", "v4");
        config
    }

    /// Applies the user's `-X` properties over what a mode set.
    pub fn finish(&self, config: &mut ClientConfig) {
        for (key, value) in &self.properties {
            config.set(key, value);
        }
    }
}

/// Creates `topic` with `partitions` (replication factor 1); an existing
/// topic is an error unless `reuse`.
pub fn create_topic(
    connection: &Connection,
    topic: &str,
    partitions: i32,
    reuse: bool,
) -> anyhow::Result<()> {
    let mut config = connection.config();
    connection.finish(&mut config);
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures_executor::block_on(admin.create_topics([&new], &options))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if reuse => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Parses `key=value`.
pub fn property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

/// Payload bytes: a pseudo-random pool, so compression has work to do but
/// every message differs.
pub fn payload_pool(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Letters only: about 4.7 bits of entropy per byte.
            b'a' + (state % 26) as u8
        })
        .collect()
}
