//! Logging setup: `tracing` to stderr, levels like Faust's `-l info`, as
//! human lines (the default) or JSON lines (`--log-format json`).
//!
//! A JSON line is one object: `ts` (Unix seconds), `level`, `message`, any
//! other fields of the log call, and, for a typed [`crate::events::Event`],
//! `event` and the event's own fields. Writing never panics: a closed stderr
//! loses the lines, not the process.

use serde_json::{Map, Value};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::Subscriber;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line, typed events included.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` wins over `level`.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("warn,wordstream={level}")))
        .unwrap_or_else(|_| EnvFilter::new("warn,wordstream=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // its own report of a failed write is an eprintln!, which panics
        // on a closed stderr pipe
        .log_internal_errors(false);
    match format {
        LogFormat::Human => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(human_field))
            .init(),
        LogFormat::Json => builder.event_format(JsonLines).init(),
    }
}

/// Human lines: the message, then `name=value` for other fields; an
/// event's machine fields are left out (its message says it all).
fn human_field(w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    match field.name() {
        "message" => write!(w, "{value:?}"),
        "event" | "event_json" => Ok(()),
        name => write!(w, " {name}={value:?}"),
    }
}

/// The JSON line format.
struct JsonLines;

#[derive(Default)]
struct Fields {
    message: String,
    event_json: Option<String>,
    other: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event_json" => self.event_json = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => {
                self.other.insert(name.into(), Value::from(value));
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.other.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.other.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.other.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.other
                .insert(field.name().into(), Value::from(format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut line = Map::new();
        line.insert("ts".into(), Value::from(ts));
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert("message".into(), Value::from(fields.message));
        line.extend(fields.other);
        if let Some(Ok(Value::Object(ev))) = fields
            .event_json
            .as_deref()
            .map(serde_json::from_str::<Value>)
        {
            line.extend(ev);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}
