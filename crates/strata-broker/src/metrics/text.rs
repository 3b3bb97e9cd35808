//! Writing metric families in the Prometheus text exposition format, for
//! gauges read from state at scrape time.

use std::fmt::Write;

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(key);
                self.out.push_str("=\"");
                escape_into(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_with_escaped_labels() {
        let mut text = Exposition::default();
        text.family("consumer_group_lag", "gauge", "Lag");
        text.sample(
            "consumer_group_lag",
            &[("group", "a\"b\\c\nd"), ("partition", "0")],
            42.0,
        );
        text.sample("up", &[], 1.0);
        assert_eq!(
            text.finish(),
            "# HELP consumer_group_lag Lag\n# TYPE consumer_group_lag gauge\n\
             consumer_group_lag{group=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 42\nup 1\n"
        );
    }
}
