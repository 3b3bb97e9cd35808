//! The front end's metrics: requests, errors, latency, connections and
//! per-topic traffic, recorded as they happen; and [`scrape`], the gauges
//! read from the broker's state each time `/metrics` is scraped.
//!
//! Names are part of the operator interface; `docs/metrics.md` lists each
//! one. Labels are bounded: API names and versions and error names are
//! fixed sets, and topic labels are capped at [`MAX_TOPIC_LABELS`] distinct
//! topics (the rest are counted under [`OTHER_TOPICS`]).

pub mod scrape;
pub mod text;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::ResponseError;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};

use crate::handlers::error_codes;

pub const REQUESTS: &str = "kafka_requests_total";
pub const REQUEST_ERRORS: &str = "kafka_request_errors_total";
pub const REQUEST_DURATION: &str = "kafka_request_duration_seconds";
pub const REQUESTS_REFUSED: &str = "kafka_requests_refused_total";
pub const CONNECTIONS_OPEN: &str = "kafka_connections_open";
pub const CONNECTIONS_ACCEPTED: &str = "kafka_connections_accepted_total";
pub const TOPIC_BYTES_IN: &str = "kafka_topic_bytes_in_total";
pub const TOPIC_MESSAGES_IN: &str = "kafka_topic_messages_in_total";
pub const TOPIC_BYTES_OUT: &str = "kafka_topic_bytes_out_total";
pub const CONNECTIONS_REJECTED: &str = "kafka_connections_rejected_total";
pub const FETCH_MEMORY_HELD: &str = "fetch_memory_held_bytes";
pub const FETCH_MEMORY_LIMIT: &str = "fetch_memory_limit_bytes";
pub const FETCH_MEMORY_WAITS: &str = "fetch_memory_waits_total";

/// Distinct topics that get their own label; more are counted together.
pub const MAX_TOPIC_LABELS: usize = 1000;
/// The topic label of traffic beyond [`MAX_TOPIC_LABELS`] topics.
pub const OTHER_TOPICS: &str = "_other";

/// Registers the front end's metrics with their help text.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "Requests answered (or, for acks=0 produce, handled), by API and version"
    );
    describe_counter!(
        REQUEST_ERRORS,
        Unit::Count,
        "Error codes in answers (top level and per topic/partition/resource), by API and Kafka error name"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request being read to its answer being ready, by API (includes fetch long-poll waits)"
    );
    describe_counter!(
        REQUESTS_REFUSED,
        Unit::Count,
        "Frames refused before handling (the connection is closed), by reason"
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        Unit::Count,
        "Open Kafka client connections"
    );
    describe_counter!(
        CONNECTIONS_ACCEPTED,
        Unit::Count,
        "Kafka client connections accepted"
    );
    describe_counter!(
        TOPIC_BYTES_IN,
        Unit::Bytes,
        "Record batch bytes appended by produce requests, by topic"
    );
    describe_counter!(
        TOPIC_MESSAGES_IN,
        Unit::Count,
        "Records appended by produce requests, by topic"
    );
    describe_counter!(
        TOPIC_BYTES_OUT,
        Unit::Bytes,
        "Record batch bytes sent in fetch responses, by topic"
    );
    describe_counter!(
        CONNECTIONS_REJECTED,
        Unit::Count,
        "Kafka client connections closed on arrival because max_connections were open"
    );
    describe_gauge!(
        FETCH_MEMORY_HELD,
        Unit::Bytes,
        "Record bytes held by fetch answers not yet sent (read when scraped)"
    );
    describe_gauge!(
        FETCH_MEMORY_LIMIT,
        Unit::Bytes,
        "The fetch memory budget (fetch_memory_bytes)"
    );
    describe_counter!(
        FETCH_MEMORY_WAITS,
        Unit::Count,
        "Times a fetch waited because the fetch memory budget was spent"
    );
    counter!(CONNECTIONS_ACCEPTED).absolute(0);
    counter!(CONNECTIONS_REJECTED).absolute(0);
    counter!(FETCH_MEMORY_WAITS).absolute(0);
    gauge!(CONNECTIONS_OPEN).set(0.0);
}

pub fn count_fetch_memory_wait() {
    counter!(FETCH_MEMORY_WAITS).increment(1);
}

pub fn count_connection_rejected() {
    counter!(CONNECTIONS_REJECTED).increment(1);
}

/// Records one handled request: its count, duration and error codes.
pub fn record_request(api: ApiKey, version: i16, elapsed: Duration, body: Option<&ResponseKind>) {
    let api_name = format!("{api:?}");
    counter!(REQUESTS, "api" => api_name.clone(), "version" => version.to_string()).increment(1);
    metrics::histogram!(REQUEST_DURATION, "api" => api_name.clone()).record(elapsed.as_secs_f64());
    if let Some(body) = body {
        error_codes::visit(body, |code| {
            counter!(REQUEST_ERRORS, "api" => api_name.clone(), "code" => error_name(code))
                .increment(1);
        });
    }
}

/// Records a frame refused before it reached a handler.
pub fn record_refused(reason: &'static str) {
    counter!(REQUESTS_REFUSED, "reason" => reason).increment(1);
}

/// Kafka's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn error_name(code: i16) -> String {
    let error = match ResponseError::try_from_code(code) {
        None => return "NONE".to_string(),
        Some(ResponseError::Unknown(_)) => return "UNKNOWN_CODE".to_string(),
        Some(error) => error,
    };
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Connection gauge and counter; the guard closes the connection's count.
pub struct ConnectionGuard(());

impl ConnectionGuard {
    pub fn open() -> Self {
        counter!(CONNECTIONS_ACCEPTED).increment(1);
        gauge!(CONNECTIONS_OPEN).increment(1.0);
        ConnectionGuard(())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Per-topic labels with a cap on how many distinct topics get one.
#[derive(Debug, Default)]
pub struct TopicLabels {
    known: Mutex<HashSet<Arc<str>>>,
}

impl TopicLabels {
    /// The label for `topic`: its name, or [`OTHER_TOPICS`] once the cap is
    /// reached by other topics.
    pub fn label(&self, topic: &str) -> Arc<str> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(label) = known.get(topic) {
            return Arc::clone(label);
        }
        if known.len() >= MAX_TOPIC_LABELS {
            return Arc::from(OTHER_TOPICS);
        }
        let label: Arc<str> = Arc::from(topic);
        known.insert(Arc::clone(&label));
        label
    }

    pub fn record_in(&self, topic: &str, bytes: usize, records: u64) {
        let label = self.label(topic).to_string();
        counter!(TOPIC_BYTES_IN, "topic" => label.clone()).increment(bytes as u64);
        counter!(TOPIC_MESSAGES_IN, "topic" => label).increment(records);
    }

    pub fn record_out(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            let label = self.label(topic).to_string();
            counter!(TOPIC_BYTES_OUT, "topic" => label).increment(bytes as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(10), "MESSAGE_TOO_LARGE");
        assert_eq!(error_name(i16::MAX), "UNKNOWN_CODE");
    }

    #[test]
    fn topic_labels_are_capped() {
        let labels = TopicLabels::default();
        for i in 0..MAX_TOPIC_LABELS {
            assert_eq!(&*labels.label(&format!("t{i}")), format!("t{i}"));
        }
        assert_eq!(&*labels.label("one-more"), OTHER_TOPICS);
        assert_eq!(&*labels.label("t7"), "t7");
    }
}
