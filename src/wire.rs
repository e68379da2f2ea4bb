//! Changelog wire formats (`--serde`, docs/design.md §2): how a word and its count
//! become Kafka key and value bytes, and back.

use anyhow::{anyhow, bail, Result};

/// A changelog encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Serde {
    /// JSON key and value, byte-compatible with a Faust table (`"the"` → `120`).
    #[default]
    Faust,
    /// UTF-8 key, 8-byte big-endian signed value (Kafka Streams `Serdes.Long()`).
    Kstreams,
    /// UTF-8 key, decimal ASCII value.
    Text,
}

impl Serde {
    /// The `--serde` value naming this format.
    pub fn name(self) -> &'static str {
        match self {
            Serde::Faust => "faust",
            Serde::Kstreams => "kstreams",
            Serde::Text => "text",
        }
    }

    /// Key bytes of `word`.
    pub fn key(self, word: &str) -> Vec<u8> {
        match self {
            Serde::Faust => python_json_string(word).into_bytes(),
            Serde::Kstreams | Serde::Text => word.as_bytes().to_vec(),
        }
    }

    /// Value bytes of `count`.
    pub fn value(self, count: i64) -> Vec<u8> {
        match self {
            Serde::Faust | Serde::Text => count.to_string().into_bytes(),
            Serde::Kstreams => count.to_be_bytes().to_vec(),
        }
    }

    /// The word of a key.
    pub fn decode_key(self, key: &[u8]) -> Result<String> {
        match self {
            Serde::Faust => serde_json::from_slice::<String>(key)
                .map_err(|e| anyhow!("key is not a JSON string: {e}")),
            Serde::Kstreams | Serde::Text => {
                String::from_utf8(key.to_vec()).map_err(|_| anyhow!("key is not UTF-8"))
            }
        }
    }

    /// The count of a value.
    pub fn decode_value(self, value: &[u8]) -> Result<i64> {
        match self {
            Serde::Faust => serde_json::from_slice::<i64>(value)
                .map_err(|e| anyhow!("value is not a JSON integer: {e}")),
            Serde::Text => std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| anyhow!("value is not a decimal integer")),
            Serde::Kstreams => match <[u8; 8]>::try_from(value) {
                Ok(b) => Ok(i64::from_be_bytes(b)),
                Err(_) => bail!("value is {} bytes, not an 8-byte long", value.len()),
            },
        }
    }
}

/// The backslash escape JSON, Python and C share for `"`, `\`, newline,
/// carriage return and tab.
pub fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        _ => return None,
    })
}

/// `json.dumps(s)` as Python writes it (ASCII only: `\uXXXX` escapes, with
/// surrogate pairs beyond the BMP), so our changelog keys are the very bytes
/// a Faust app writes.
pub fn python_json_string(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if let Some(e) = short_escape(c) {
            out.push_str(e);
            continue;
        }
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faust_bytes() {
        assert_eq!(Serde::Faust.key("the"), b"\"the\"");
        assert_eq!(Serde::Faust.value(120), b"120");
        assert_eq!(Serde::Faust.key("naïve"), b"\"na\\u00efve\"");
        assert_eq!(Serde::Faust.key("𐍈"), b"\"\\ud800\\udf48\"");
        assert_eq!(
            Serde::Faust.decode_key(b"\"na\\u00efve\"").unwrap(),
            "naïve"
        );
    }

    #[test]
    fn round_trips() {
        for serde in [Serde::Faust, Serde::Kstreams, Serde::Text] {
            assert_eq!(serde.decode_key(&serde.key("Zoë")).unwrap(), "Zoë");
            assert_eq!(serde.decode_value(&serde.value(-7)).unwrap(), -7);
            assert_eq!(serde.decode_value(&serde.value(1 << 40)).unwrap(), 1 << 40);
        }
        assert_eq!(Serde::Kstreams.value(120), [0, 0, 0, 0, 0, 0, 0, 120]);
    }
}
