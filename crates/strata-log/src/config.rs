//! Topic configuration: every key Kafka reports for a topic, its type,
//! default and validation, and the effective values the log acts on.

use std::collections::BTreeMap;

use crate::LogError;

/// The type of a config value, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One topic config key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// Smallest accepted value for numeric keys.
    min: Option<i64>,
    /// Accepted values for enumerated strings and lists.
    choices: &'static [&'static str],
}

const fn key(name: &'static str, kind: ConfigType, default: &'static str) -> ConfigKey {
    ConfigKey {
        name,
        kind,
        default,
        min: None,
        choices: &[],
    }
}

const fn ranged(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    min: i64,
) -> ConfigKey {
    ConfigKey {
        name,
        kind,
        default,
        min: Some(min),
        choices: &[],
    }
}

const fn choice(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    choices: &'static [&'static str],
) -> ConfigKey {
    ConfigKey {
        name,
        kind,
        default,
        min: None,
        choices,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[ConfigKey] = &[
    choice(
        "cleanup.policy",
        ConfigType::List,
        "delete",
        &["delete", "compact"],
    ),
    choice(
        "compression.type",
        ConfigType::String,
        "producer",
        &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
    ),
    ranged("delete.retention.ms", ConfigType::Long, "86400000", 0),
    ranged("file.delete.delay.ms", ConfigType::Long, "60000", 0),
    ranged("flush.messages", ConfigType::Long, LONG_MAX, 1),
    ranged("flush.ms", ConfigType::Long, LONG_MAX, 0),
    key(
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
    ranged("index.interval.bytes", ConfigType::Int, "4096", 0),
    key(
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
    ranged("local.retention.bytes", ConfigType::Long, "-2", -2),
    ranged("local.retention.ms", ConfigType::Long, "-2", -2),
    ranged("max.compaction.lag.ms", ConfigType::Long, LONG_MAX, 1),
    ranged("max.message.bytes", ConfigType::Int, "1048588", 0),
    ranged(
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        LONG_MAX,
        0,
    ),
    ranged(
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        LONG_MAX,
        0,
    ),
    choice(
        "message.timestamp.type",
        ConfigType::String,
        "CreateTime",
        &["CreateTime", "LogAppendTime"],
    ),
    key("min.cleanable.dirty.ratio", ConfigType::Double, "0.5"),
    ranged("min.compaction.lag.ms", ConfigType::Long, "0", 0),
    ranged("min.insync.replicas", ConfigType::Int, "1", 1),
    key("preallocate", ConfigType::Boolean, "false"),
    key("remote.storage.enable", ConfigType::Boolean, "false"),
    ranged("retention.bytes", ConfigType::Long, "-1", i64::MIN),
    ranged("retention.ms", ConfigType::Long, "604800000", -1),
    ranged("segment.bytes", ConfigType::Int, "1073741824", 14),
    ranged("segment.index.bytes", ConfigType::Int, "10485760", 4),
    ranged("segment.jitter.ms", ConfigType::Long, "0", 0),
    ranged("segment.ms", ConfigType::Long, "604800000", 1),
    key(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
    ),
];

/// The config key named `name`, if it is a topic config.
pub fn lookup(name: &str) -> Option<&'static ConfigKey> {
    TOPIC_CONFIGS.iter().find(|k| k.name == name)
}

impl ConfigKey {
    /// Checks `value` against this key's type and range.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let bad = |why: &str| format!("invalid value {value:?} for {}: {why}", self.name);
        match self.kind {
            ConfigType::Boolean => match value {
                "true" | "false" => Ok(()),
                _ => Err(bad("expected true or false")),
            },
            ConfigType::Int | ConfigType::Long => {
                let parsed: i64 = if self.kind == ConfigType::Int {
                    value
                        .trim()
                        .parse::<i32>()
                        .map(i64::from)
                        .map_err(|_| bad("expected an int"))?
                } else {
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| bad("expected a long"))?
                };
                match self.min {
                    Some(min) if parsed < min => Err(bad(&format!("must be at least {min}"))),
                    _ => Ok(()),
                }
            }
            ConfigType::Double => match value.trim().parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
                _ => Err(bad("expected a number between 0 and 1")),
            },
            ConfigType::String => {
                if self.choices.is_empty() || self.choices.contains(&value) {
                    Ok(())
                } else {
                    Err(bad(&format!("expected one of {}", self.choices.join(", "))))
                }
            }
            ConfigType::List => {
                let items = split_list(value);
                if self.choices.is_empty() {
                    return Ok(());
                }
                // An empty list is accepted: for `cleanup.policy` it means
                // neither delete nor compact (Kafka 4.1, KIP-1161).
                match items.iter().find(|i| !self.choices.contains(i)) {
                    Some(_) => Err(bad(&format!(
                        "expected items from {}",
                        self.choices.join(", ")
                    ))),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Splits a Kafka list value (comma separated, spaces ignored).
pub fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Validates a set of overrides: every key known, every value valid.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), LogError> {
    for (name, value) in overrides {
        let key = lookup(name)
            .ok_or_else(|| LogError::InvalidConfig(format!("unknown topic config {name:?}")))?;
        key.validate(value).map_err(LogError::InvalidConfig)?;
    }
    Ok(())
}

/// The broker's own defaults for topic configs (Kafka's `log.retention.ms`
/// and the like), by topic config name; they stand in for Kafka's
/// defaults where set.
pub type BrokerDefaults = std::sync::Arc<BTreeMap<String, String>>;

/// The values the log acts on, resolved from a topic's overrides over the
/// broker's defaults over Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub overrides: BTreeMap<String, String>,
    pub broker_defaults: BrokerDefaults,
    pub compact: bool,
    /// `cleanup.policy` holds `delete`: retention applies.
    pub delete: bool,
    pub log_append_time: bool,
    pub max_message_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// Key compaction: how long a tombstone stays after compaction reached
    /// it, how young a record may be compacted, and how long one may wait.
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    /// Key compaction waits until this share of the partition is dirty.
    pub min_cleanable_dirty_ratio_permille: u32,
}

impl TopicConfig {
    /// Resolves overrides (already validated) over the defaults.
    pub fn resolve(overrides: BTreeMap<String, String>, broker_defaults: &BrokerDefaults) -> Self {
        let get = |name: &str| -> String {
            overrides
                .get(name)
                .or_else(|| broker_defaults.get(name))
                .cloned()
                .or_else(|| lookup(name).map(|k| k.default.to_string()))
                .unwrap_or_default()
        };
        let num = |name: &str| get(name).trim().parse::<i64>().unwrap_or(0);
        let policy = get("cleanup.policy");
        TopicConfig {
            compact: split_list(&policy).contains(&"compact"),
            delete: split_list(&policy).contains(&"delete"),
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            max_message_bytes: usize::try_from(num("max.message.bytes")).unwrap_or(0),
            retention_ms: num("retention.ms"),
            retention_bytes: num("retention.bytes"),
            delete_retention_ms: num("delete.retention.ms"),
            min_compaction_lag_ms: num("min.compaction.lag.ms"),
            max_compaction_lag_ms: num("max.compaction.lag.ms"),
            min_cleanable_dirty_ratio_permille: {
                let ratio = get("min.cleanable.dirty.ratio")
                    .trim()
                    .parse::<f64>()
                    .unwrap_or(0.5);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let permille = (ratio.clamp(0.0, 1.0) * 1000.0).round() as u32;
                permille
            },
            overrides,
            broker_defaults: std::sync::Arc::clone(broker_defaults),
        }
    }

    /// The value of `name` and whether it is an override (otherwise it is
    /// the broker's default, or Kafka's).
    pub fn value(&self, key: &ConfigKey) -> (String, bool) {
        match self.overrides.get(key.name) {
            Some(v) => (v.clone(), true),
            None => (
                self.broker_default(key.name)
                    .unwrap_or(key.default)
                    .to_string(),
                false,
            ),
        }
    }

    /// The broker's own default for `name`, where it sets one.
    pub fn broker_default(&self, name: &str) -> Option<&str> {
        self.broker_defaults.get(name).map(String::as_str)
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig::resolve(BTreeMap::new(), &BrokerDefaults::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let c = TopicConfig::default();
        assert!(!c.compact);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.retention_ms, 604_800_000);
    }

    #[test]
    fn validation_catches_bad_values() {
        let check = |k: &str, v: &str| {
            validate_overrides(&BTreeMap::from([(k.to_string(), v.to_string())]))
        };
        assert!(check("retention.ms", "-1").is_ok());
        assert!(check("retention.ms", "-2").is_err());
        assert!(check("retention.ms", "abc").is_err());
        assert!(check("cleanup.policy", "compact,delete").is_ok());
        assert!(check("cleanup.policy", "compact,bogus").is_err());
        assert!(check("cleanup.policy", "").is_ok());
        assert!(check("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(check("max.message.bytes", "99999999999").is_err());
        assert!(check("no.such.key", "1").is_err());
        assert!(check("preallocate", "yes").is_err());
    }

    #[test]
    fn overrides_take_effect() {
        let broker = BrokerDefaults::new(BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            ("retention.bytes".to_string(), "5000".to_string()),
        ]));
        let c = TopicConfig::resolve(
            BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "message.timestamp.type".to_string(),
                    "LogAppendTime".to_string(),
                ),
                ("retention.bytes".to_string(), "7".to_string()),
            ]),
            &broker,
        );
        assert!(c.compact);
        assert!(!c.delete);
        assert!(c.log_append_time);
        // Topic overrides, then the broker's defaults, then Kafka's.
        assert_eq!(c.retention_bytes, 7);
        assert_eq!(c.retention_ms, 1000);
        let key = lookup("retention.ms").unwrap();
        assert_eq!(c.value(key), ("1000".to_string(), false));
        assert!(TopicConfig::default().delete);
    }
}
