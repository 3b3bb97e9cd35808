//! The broker's wall clock, in milliseconds since the Unix epoch (the unit
//! of Kafka's timestamps); 0 if the clock is before the epoch.

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
