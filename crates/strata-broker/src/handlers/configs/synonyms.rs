//! Config synonyms as Kafka reports them in DescribeConfigs: a topic config
//! falls back to a broker config (often under another name), and a broker
//! config to the cluster-wide dynamic default and then Kafka's default.

use kafka_protocol::messages::describe_configs_response::DescribeConfigsSynonym;
use strata_log::config::ConfigKey;

use super::super::text;

/// Kafka's config source codes.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// A topic config's broker config, and whether that broker config has a
/// default of its own in Kafka. Kafka lists a synonym only for a broker
/// config that has a value; `log.retention.ms`, `log.roll.ms`,
/// `log.roll.jitter.ms` and `log.flush.interval.ms` have none (their
/// `.hours`/`.minutes` fallbacks do, and Kafka leaves those out).
const TOPIC_TO_BROKER: &[(&str, &str, bool)] = &[
    ("cleanup.policy", "log.cleanup.policy", true),
    ("compression.type", "compression.type", true),
    (
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        true,
    ),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms", true),
    ("flush.messages", "log.flush.interval.messages", true),
    ("flush.ms", "log.flush.interval.ms", false),
    ("index.interval.bytes", "log.index.interval.bytes", true),
    ("local.retention.bytes", "log.local.retention.bytes", true),
    ("local.retention.ms", "log.local.retention.ms", true),
    (
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        true,
    ),
    ("max.message.bytes", "message.max.bytes", true),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        true,
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        true,
    ),
    ("message.timestamp.type", "log.message.timestamp.type", true),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        true,
    ),
    (
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        true,
    ),
    ("min.insync.replicas", "min.insync.replicas", true),
    ("preallocate", "log.preallocate", true),
    ("retention.bytes", "log.retention.bytes", true),
    ("retention.ms", "log.retention.ms", false),
    ("segment.bytes", "log.segment.bytes", true),
    ("segment.index.bytes", "log.index.size.max.bytes", true),
    ("segment.jitter.ms", "log.roll.jitter.ms", false),
    ("segment.ms", "log.roll.ms", false),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        true,
    ),
];

/// Broker configs set cluster-wide as a dynamic default. Kafka ≥ 4.1 (with
/// eligible leader replicas, on by default) keeps `min.insync.replicas` at
/// cluster level only, with the static value.
pub const CLUSTER_DEFAULTS: &[&str] = &["min.insync.replicas"];

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(text(name))
        .with_value(Some(text(value)))
        .with_source(source)
}

/// A topic config's synonyms, most specific first: the topic's override (if
/// any), then the broker config it falls back to — the broker's own
/// setting (`broker_value`, where it sets one), then Kafka's default. The
/// entry's source is the first synonym's, DEFAULT_CONFIG when there is none.
pub fn for_topic(
    key: &ConfigKey,
    value: &str,
    overridden: bool,
    broker_value: Option<&str>,
) -> Vec<DescribeConfigsSynonym> {
    let mut synonyms = Vec::new();
    if overridden {
        synonyms.push(synonym(key.name, value, SOURCE_TOPIC));
    }
    if let Some((_, broker_name, has_default)) = TOPIC_TO_BROKER
        .iter()
        .find(|(topic, _, _)| *topic == key.name)
    {
        if let Some(broker_value) = broker_value {
            synonyms.push(synonym(broker_name, broker_value, SOURCE_STATIC_BROKER));
        }
        if CLUSTER_DEFAULTS.contains(broker_name) {
            synonyms.push(synonym(
                broker_name,
                key.default,
                SOURCE_DYNAMIC_DEFAULT_BROKER,
            ));
        }
        if *has_default {
            synonyms.push(synonym(broker_name, key.default, SOURCE_DEFAULT));
        }
    }
    synonyms
}

/// A broker config's synonyms: the cluster-wide dynamic default, the
/// broker's own (static) setting when it differs from Kafka's default, and
/// Kafka's default. The entry's source is the first synonym's.
pub fn for_broker(
    name: &str,
    value: &str,
    kafka_default: Option<&str>,
) -> Vec<DescribeConfigsSynonym> {
    let mut synonyms = Vec::new();
    if CLUSTER_DEFAULTS.contains(&name) {
        synonyms.push(synonym(name, value, SOURCE_DYNAMIC_DEFAULT_BROKER));
    } else if kafka_default != Some(value) {
        synonyms.push(synonym(name, value, SOURCE_STATIC_BROKER));
    }
    if let Some(default) = kafka_default {
        synonyms.push(synonym(name, default, SOURCE_DEFAULT));
    }
    synonyms
}
