//! The JSON log lines of `wordstream --log-format json`, parsed: time,
//! level, message, and the typed [`Event`] when the line carries one. Tests
//! learn what a worker did from these events, never from log prose.

use std::fmt;
use wordstream::events::{Event, Partitions, Status};

/// One line a process wrote on stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Unix seconds (for a line that is not JSON: when it was read).
    pub ts: f64,
    /// `INFO`, `WARN`, …; empty for a line that is not JSON (a panic, the
    /// final `wordstream: error: …`).
    pub level: String,
    /// The message (the whole line if it is not JSON).
    pub message: String,
    /// The typed event, if the line is one.
    pub event: Option<Event>,
}

impl LogLine {
    /// Parses one line; `now` stands for the time of a line that is not JSON.
    pub fn parse(line: &str, now: f64) -> LogLine {
        let raw = || LogLine {
            ts: now,
            level: String::new(),
            message: line.to_string(),
            event: None,
        };
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(line) else {
            return raw();
        };
        let text = |k: &str| {
            obj.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let mut message = text("message");
        let mut event = None;
        if obj.contains_key("event") {
            match serde_json::from_value::<Event>(serde_json::Value::Object(obj.clone())) {
                Ok(e) => event = Some(e),
                // shown in a failing test's log tail
                Err(e) => message = format!("[event that does not parse: {e}] {line}"),
            }
        }
        LogLine {
            ts: obj.get("ts").and_then(|v| v.as_f64()).unwrap_or(now),
            level: text("level"),
            message,
            event,
        }
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} {:5} {}", self.ts, self.level, self.message)
    }
}

/// The events of `lines`, with their times.
pub fn events(lines: &[LogLine]) -> impl Iterator<Item = (f64, &Event)> {
    lines
        .iter()
        .filter_map(|l| l.event.as_ref().map(|e| (l.ts, e)))
}

/// The status events, with their times.
pub fn statuses(lines: &[LogLine]) -> Vec<(f64, Status)> {
    events(lines)
        .filter_map(|(t, e)| match e {
            Event::Status(s) => Some((t, s.clone())),
            _ => None,
        })
        .collect()
}

/// A table or ledger restore: which partitions, how many entries, how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Restore {
    pub ts: f64,
    pub partitions: Vec<i32>,
    pub entries: u64,
    pub seconds: f64,
}

/// The restores of `what` (`table` or `ledger`).
pub fn restores(lines: &[LogLine], what: &str) -> Vec<Restore> {
    events(lines)
        .filter_map(|(ts, e)| match e {
            Event::Restored {
                what: w,
                partitions,
                entries,
                seconds,
                ..
            } if w == what => Some(Restore {
                ts,
                partitions: partitions.clone(),
                entries: *entries,
                seconds: *seconds,
            }),
            _ => None,
        })
        .collect()
}

/// The partitions of each assignment, with its time.
pub fn assignments(lines: &[LogLine]) -> Vec<(f64, Partitions)> {
    events(lines)
        .filter_map(|(t, e)| match e {
            Event::Assigned { partitions } => Some((t, partitions.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_plain_lines_and_foreign_text() {
        let status = LogLine::parse(
            r#"{"ts":12.5,"level":"INFO","message":"status: …","event":"status","objects":3,"failed":0,"bytes":10,"words":7,"transactions":2,"aborted":0,"ledger":[0,1],"repartition":[0,1],"lister":true,"table_words":5,"list_calls":12}"#,
            1.0,
        );
        assert_eq!(status.ts, 12.5);
        assert_eq!(status.level, "INFO");
        let Some(Event::Status(s)) = &status.event else {
            panic!("{status:?}")
        };
        assert_eq!((s.objects, s.list_calls, s.lister), (3, 12, true));
        assert_eq!(s.ledger, [0, 1]);

        let plain = LogLine::parse(r#"{"ts":2.0,"level":"WARN","message":"slow"}"#, 1.0);
        assert_eq!(
            (plain.level.as_str(), plain.event.is_none()),
            ("WARN", true)
        );

        let foreign = LogLine::parse("wordstream: error: boom", 7.0);
        assert_eq!(
            foreign,
            LogLine {
                ts: 7.0,
                level: String::new(),
                message: "wordstream: error: boom".into(),
                event: None
            }
        );
        assert_eq!(statuses(&[status, plain, foreign]).len(), 1);
    }
}
