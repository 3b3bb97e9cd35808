//! The broker's configuration: one model, three sources.
//!
//! Precedence: command-line flags > `STRATA_*` environment variables >
//! the TOML file named by `--config` > built-in defaults. Unknown keys in
//! the file and invalid values stop startup with a message naming the key.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

/// `strata serve` flags; each also reads a `STRATA_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the keys below (flags and env vars win over it).
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where topics, the WAL and segments are stored.
    #[arg(long, env = "STRATA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener address.
    #[arg(long, env = "STRATA_LISTEN")]
    pub listen: Option<String>,
    /// Address clients are told to connect to (default: the listen address).
    #[arg(long, env = "STRATA_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// HTTP listener for /health and /ready.
    #[arg(long, env = "STRATA_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Partitions of auto-created topics.
    #[arg(long, env = "STRATA_DEFAULT_PARTITIONS")]
    pub default_partitions: Option<i32>,
    /// Create topics on Metadata requests for unknown topics.
    #[arg(long, env = "STRATA_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Size at which a WAL segment is rolled and sealed.
    #[arg(long, env = "STRATA_WAL_SEGMENT_BYTES")]
    pub wal_segment_bytes: Option<u64>,
    /// Append to the WAL with direct I/O, bypassing the page cache, where
    /// the file system supports it.
    #[arg(long, env = "STRATA_WAL_DIRECT_IO")]
    pub wal_direct_io: Option<bool>,
    /// Bytes of recent WAL writes kept in memory for reads (0: none).
    #[arg(long, env = "STRATA_WAL_CACHE_BYTES")]
    pub wal_cache_bytes: Option<usize>,
    /// Memory for batches read ahead for consumers reading older data in
    /// order (0: no read-ahead).
    #[arg(long, env = "STRATA_WAL_READ_AHEAD_BYTES")]
    pub wal_read_ahead_bytes: Option<usize>,
    /// Memory for sealed WAL segments' index entries brought back for
    /// reads and housekeeping.
    #[arg(long, env = "STRATA_WAL_INDEX_CACHE_BYTES")]
    pub wal_index_cache_bytes: Option<usize>,
    /// Largest request accepted (Kafka's socket.request.max.bytes).
    #[arg(long, env = "STRATA_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Record bytes all unsent fetch answers together may hold; fetches
    /// are answered smaller, then wait, when it is spent.
    #[arg(long, env = "STRATA_FETCH_MEMORY_BYTES")]
    pub fetch_memory_bytes: Option<usize>,
    /// Client connections open at once; more are closed as they arrive
    /// (Kafka's max.connections).
    #[arg(long, env = "STRATA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Log format: "text" or "json".
    #[arg(long, env = "STRATA_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log level or tracing filter ("info", "debug", "strata_log=debug,info");
    /// `RUST_LOG`, when set, wins.
    #[arg(long, env = "STRATA_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// How long a rebalance of an empty group waits for more members
    /// (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, env = "STRATA_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Shortest session timeout a member may ask for (Kafka's
    /// group.min.session.timeout.ms).
    #[arg(long, env = "STRATA_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<u64>,
    /// Longest session timeout a member may ask for (Kafka's
    /// group.max.session.timeout.ms).
    #[arg(long, env = "STRATA_GROUP_MAX_SESSION_TIMEOUT_MS")]
    pub group_max_session_timeout_ms: Option<u64>,
    /// Offsets of a group without members expire this long after their
    /// last commit (Kafka's offsets.retention.minutes).
    #[arg(long, env = "STRATA_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<u64>,
    /// How long a topic keeps records unless it sets retention.ms (Kafka's
    /// log.retention.ms; -1: forever).
    #[arg(long, env = "STRATA_LOG_RETENTION_MS", allow_hyphen_values = true)]
    pub log_retention_ms: Option<i64>,
    /// Bytes a partition keeps unless its topic sets retention.bytes (Kafka's
    /// log.retention.bytes; -1: no limit).
    #[arg(long, env = "STRATA_LOG_RETENTION_BYTES", allow_hyphen_values = true)]
    pub log_retention_bytes: Option<i64>,
    /// How often retention is enforced (Kafka's
    /// log.retention.check.interval.ms).
    #[arg(
        long,
        env = "STRATA_LOG_RETENTION_CHECK_INTERVAL_MS",
        allow_hyphen_values = true
    )]
    pub log_retention_check_interval_ms: Option<u64>,
    /// A sealed WAL segment whose live bytes are below this percentage of
    /// its size is compacted (its live batches copied, its space given back).
    #[arg(
        long,
        env = "STRATA_WAL_COMPACTION_LIVE_PERCENT",
        allow_hyphen_values = true
    )]
    pub wal_compaction_live_percent: Option<u8>,
    /// WAL compaction runs once such segments hold this many dead bytes...
    #[arg(
        long,
        env = "STRATA_WAL_COMPACTION_DEAD_BYTES",
        allow_hyphen_values = true
    )]
    pub wal_compaction_dead_bytes: Option<u64>,
    /// ...or once one of them is this old.
    #[arg(
        long,
        env = "STRATA_WAL_COMPACTION_MAX_AGE_MS",
        allow_hyphen_values = true
    )]
    pub wal_compaction_max_age_ms: Option<u64>,
    /// I/O budget of WAL compaction: bytes read and written per second (0:
    /// no limit).
    #[arg(
        long,
        env = "STRATA_WAL_COMPACTION_BYTES_PER_SEC",
        allow_hyphen_values = true
    )]
    pub wal_compaction_bytes_per_sec: Option<u64>,
    /// How often WAL compaction looks for work.
    #[arg(
        long,
        env = "STRATA_WAL_COMPACTION_CHECK_INTERVAL_MS",
        allow_hyphen_values = true
    )]
    pub wal_compaction_check_interval_ms: Option<u64>,
    /// Nice value of compaction's thread, 0 to 19 (0: the broker's CPU and
    /// I/O priority; above 0 its I/O is also of the idle class).
    #[arg(long, env = "STRATA_WAL_COMPACTION_NICE", allow_hyphen_values = true)]
    pub wal_compaction_nice: Option<u8>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub advertised_listener: Option<String>,
    pub http_listen: String,
    pub default_partitions: i32,
    pub auto_create_topics: bool,
    pub wal_segment_bytes: u64,
    pub wal_direct_io: bool,
    pub wal_cache_bytes: usize,
    pub wal_read_ahead_bytes: usize,
    pub wal_index_cache_bytes: usize,
    pub max_request_bytes: usize,
    pub fetch_memory_bytes: usize,
    pub max_connections: usize,
    pub log_format: String,
    pub log_level: String,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: u64,
    pub group_max_session_timeout_ms: u64,
    pub offsets_retention_minutes: u64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: u64,
    pub wal_compaction_live_percent: u8,
    pub wal_compaction_dead_bytes: u64,
    pub wal_compaction_max_age_ms: u64,
    pub wal_compaction_bytes_per_sec: u64,
    pub wal_compaction_check_interval_ms: u64,
    pub wal_compaction_nice: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./strata-data"),
            listen: "127.0.0.1:9092".to_string(),
            advertised_listener: None,
            http_listen: "127.0.0.1:9080".to_string(),
            default_partitions: 1,
            auto_create_topics: true,
            wal_segment_bytes: 64 * 1024 * 1024,
            wal_direct_io: true,
            wal_cache_bytes: 64 * 1024 * 1024,
            wal_read_ahead_bytes: 32 * 1024 * 1024,
            wal_index_cache_bytes: 32 * 1024 * 1024,
            max_request_bytes: 100 * 1024 * 1024,
            fetch_memory_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
            log_format: "text".to_string(),
            log_level: "info".to_string(),
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 7 * 24 * 60,
            log_retention_ms: 604_800_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            wal_compaction_live_percent: 50,
            wal_compaction_dead_bytes: 100 * 1024 * 1024,
            wal_compaction_max_age_ms: 7_200_000,
            wal_compaction_bytes_per_sec: 32 * 1024 * 1024,
            wal_compaction_check_interval_ms: 30_000,
            wal_compaction_nice: 10,
        }
    }
}

/// A listener address split for advertising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

pub fn parse_host_port(key: &str, value: &str) -> anyhow::Result<HostPort> {
    let (host, port) = value
        .rsplit_once(':')
        .with_context(|| format!("{key}: {value:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{key}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("{key}: {value:?} has no host");
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

impl Config {
    /// Resolves flags and env vars (already merged by clap) over the file and defaults.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => Config::default(),
        };
        macro_rules! take {
            ($field:ident) => {
                if let Some(value) = args.$field.clone() {
                    config.$field = value;
                }
            };
        }
        take!(data_dir);
        take!(listen);
        take!(http_listen);
        take!(default_partitions);
        take!(auto_create_topics);
        take!(wal_segment_bytes);
        take!(wal_direct_io);
        take!(wal_cache_bytes);
        take!(wal_read_ahead_bytes);
        take!(wal_index_cache_bytes);
        take!(max_request_bytes);
        take!(fetch_memory_bytes);
        take!(max_connections);
        take!(log_format);
        take!(log_level);
        take!(group_initial_rebalance_delay_ms);
        take!(group_min_session_timeout_ms);
        take!(group_max_session_timeout_ms);
        take!(offsets_retention_minutes);
        take!(log_retention_ms);
        take!(log_retention_bytes);
        take!(log_retention_check_interval_ms);
        take!(wal_compaction_live_percent);
        take!(wal_compaction_dead_bytes);
        take!(wal_compaction_max_age_ms);
        take!(wal_compaction_bytes_per_sec);
        take!(wal_compaction_check_interval_ms);
        take!(wal_compaction_nice);
        if args.advertised_listener.is_some() {
            config
                .advertised_listener
                .clone_from(&args.advertised_listener);
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .with_context(|| format!("listen: {:?} is not an IP:PORT address", self.listen))?;
        self.http_listen.parse::<SocketAddr>().with_context(|| {
            format!(
                "http_listen: {:?} is not an IP:PORT address",
                self.http_listen
            )
        })?;
        if let Some(advertised) = &self.advertised_listener {
            parse_host_port("advertised_listener", advertised)?;
        }
        if self.default_partitions < 1 {
            bail!(
                "default_partitions: must be at least 1, got {}",
                self.default_partitions
            );
        }
        if self.wal_segment_bytes < 4096 {
            bail!(
                "wal_segment_bytes: must be at least 4096, got {}",
                self.wal_segment_bytes
            );
        }
        if self.max_request_bytes < 1024 {
            bail!(
                "max_request_bytes: must be at least 1024, got {}",
                self.max_request_bytes
            );
        }
        if self.fetch_memory_bytes < 1024 * 1024 {
            bail!(
                "fetch_memory_bytes: must be at least 1048576, got {}",
                self.fetch_memory_bytes
            );
        }
        if self.max_connections == 0 {
            bail!("max_connections: must be at least 1");
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            bail!(
                "group_min_session_timeout_ms: {} is above group_max_session_timeout_ms {}",
                self.group_min_session_timeout_ms,
                self.group_max_session_timeout_ms
            );
        }
        if self.offsets_retention_minutes == 0 {
            bail!("offsets_retention_minutes: must be at least 1");
        }
        if self.log_retention_ms < -1 {
            bail!(
                "log_retention_ms: must be -1 (forever) or more, got {}",
                self.log_retention_ms
            );
        }
        if self.log_retention_bytes < -1 {
            bail!(
                "log_retention_bytes: must be -1 (no limit) or more, got {}",
                self.log_retention_bytes
            );
        }
        if self.log_retention_check_interval_ms == 0 || self.wal_compaction_check_interval_ms == 0 {
            bail!("log_retention_check_interval_ms and wal_compaction_check_interval_ms: must be at least 1");
        }
        if self.wal_compaction_nice > 19 {
            bail!(
                "wal_compaction_nice: must be 0 to 19, got {}",
                self.wal_compaction_nice
            );
        }
        if self.wal_compaction_live_percent > 100 {
            bail!(
                "wal_compaction_live_percent: must be 0 to 100, got {}",
                self.wal_compaction_live_percent
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format: must be \"text\" or \"json\", got {:?}",
                self.log_format
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            anyhow::anyhow!(
                "log_level: {:?} is not a level or filter: {e}",
                self.log_level
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_which_wins_over_defaults() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strata.toml");
        std::fs::write(
            &file,
            "default_partitions = 3\nlisten = \"127.0.0.1:1111\"\n",
        )?;
        let args = ServeArgs {
            config: Some(file),
            listen: Some("127.0.0.1:2222".to_string()),
            ..ServeArgs::default()
        };
        let config = Config::resolve(&args)?;
        assert_eq!(config.listen, "127.0.0.1:2222");
        assert_eq!(config.default_partitions, 3);
        assert_eq!(config.http_listen, Config::default().http_listen);
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strata.toml");
        std::fs::write(&file, "no_such_key = 1\n")?;
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let err = format!("{:#}", Config::resolve(&args).err().context("should fail")?);
        assert!(err.contains("no_such_key"), "{err}");
        std::fs::write(&file, "default_partitions = 0\n")?;
        let err = format!("{:#}", Config::resolve(&args).err().context("should fail")?);
        assert!(err.contains("default_partitions"), "{err}");
        Ok(())
    }

    #[test]
    fn group_defaults_are_kafkas() {
        let config = Config::default();
        assert_eq!(config.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(config.group_min_session_timeout_ms, 6000);
        assert_eq!(config.group_max_session_timeout_ms, 1_800_000);
        let coordinator = strata_groups::CoordinatorOptions::default();
        assert_eq!(
            coordinator.initial_rebalance_delay.as_millis(),
            u128::from(config.group_initial_rebalance_delay_ms)
        );
    }

    #[test]
    fn session_timeout_bounds_come_from_the_file_and_must_be_ordered() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strata.toml");
        std::fs::write(&file, "group_min_session_timeout_ms = 1000\n")?;
        let args = ServeArgs {
            config: Some(file.clone()),
            group_max_session_timeout_ms: Some(5000),
            ..ServeArgs::default()
        };
        let config = Config::resolve(&args)?;
        assert_eq!(
            (
                config.group_min_session_timeout_ms,
                config.group_max_session_timeout_ms
            ),
            (1000, 5000)
        );
        std::fs::write(&file, "group_min_session_timeout_ms = 9000\n")?;
        let err = format!("{:#}", Config::resolve(&args).err().context("should fail")?);
        assert!(err.contains("group_min_session_timeout_ms"), "{err}");
        Ok(())
    }
}
