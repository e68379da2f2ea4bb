//! The character encoding of a markup document, and its text as UTF-8.
//!
//! XML and HTML say how they are encoded; plain text does not (it is read
//! as `--encoding` says, the original's semantics). A markup document's
//! encoding is, first to last:
//! 1. its byte order mark (UTF-8, UTF-16LE, UTF-16BE);
//! 2. the `charset` of its Content-Type (HTTP's word wins over the
//!    document's, for HTML as for XML, RFC 7303);
//! 3. XML: the declaration's `encoding="…"`; HTML: a `<meta charset=…>` or
//!    `<meta http-equiv="Content-Type" content="…; charset=…">` in its first
//!    1,024 bytes (the WHATWG prescan's window);
//! 4. otherwise UTF-8.
//!
//! Labels are the WHATWG Encoding Standard's (encoding_rs: `latin1` and
//! `iso-8859-1` are windows-1252, as browsers read them). The document is
//! transcoded to UTF-8 as it streams (encoding_rs_io, ripgrep's
//! transcoder), so the markup parsers see UTF-8 whatever it was; UTF-8
//! passes through untouched.

use super::Kind;
use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;
use std::io::Read;

/// `reader` (a markup document whose first bytes are `prefix`) as UTF-8,
/// decoded from the encoding it declares (see the module's doc).
pub fn utf8<'a>(
    kind: Kind,
    prefix: &[u8],
    content_type: Option<&str>,
    reader: impl Read + 'a,
) -> Box<dyn Read + 'a> {
    let declared = content_type
        .and_then(charset_param)
        .or_else(|| match kind {
            Kind::Xml => xml_declaration(prefix),
            Kind::Html => html_meta(prefix),
            _ => None,
        })
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        // A document that says UTF-16 without a BOM is read as ASCII-based:
        // its declaration could not have been read otherwise (WHATWG).
        .map(Encoding::output_encoding);
    Box::new(
        DecodeReaderBytesBuilder::new()
            .encoding(declared)
            .bom_override(true)
            .strip_bom(true)
            .utf8_passthru(true)
            .build(reader),
    )
}

/// The `charset` parameter of a Content-Type value (its media type, which
/// has no `=`, is passed over with the other parameters).
fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The `encoding` of an XML declaration at the start of `prefix`.
fn xml_declaration(prefix: &[u8]) -> Option<String> {
    let p = super::detect::lead_trimmed(prefix);
    if !p.starts_with(b"<?xml") {
        return None;
    }
    let end = p.windows(2).position(|w| w == b"?>")?;
    attribute(&p[..end], b"encoding")
}

/// The charset an HTML document's `<meta>` declares in `prefix` (its first
/// 1,024 bytes).
fn html_meta(prefix: &[u8]) -> Option<String> {
    let p = &prefix[..prefix.len().min(1024)];
    let lower = p.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = find(&lower[at..], b"<meta") {
        let tag_start = at + i;
        let tag_end = lower[tag_start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(lower.len(), |e| tag_start + e);
        let tag = &lower[tag_start + 5..tag_end];
        if let Some(c) = attribute(tag, b"charset") {
            return Some(c);
        }
        let is_content_type =
            attribute(tag, b"http-equiv").is_some_and(|v| v.eq_ignore_ascii_case("content-type"));
        if let (true, Some(content)) = (is_content_type, attribute(tag, b"content")) {
            if let Some(c) = charset_param(&content) {
                return Some(c);
            }
        }
        at = tag_end;
    }
    None
}

/// The value of attribute `name` (lower case) in the inside of a tag
/// (`name="v"`, `name='v'` or `name=v`).
fn attribute(tag: &[u8], name: &[u8]) -> Option<String> {
    let mut rest = tag;
    loop {
        let start = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b'/')?;
        rest = &rest[start..];
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'=' | b'/'))
            .unwrap_or(rest.len());
        let (this, after) = rest.split_at(end);
        let after = trim_start(after);
        let (value, after) = match after.strip_prefix(b"=") {
            Some(v) => value(trim_start(v)),
            None => (&b""[..], after),
        };
        if this.eq_ignore_ascii_case(name) {
            return Some(String::from_utf8_lossy(value).trim().to_string());
        }
        if after.len() == rest.len() {
            return None; // no progress: a stray character
        }
        rest = after;
    }
}

/// An attribute value at the start of `v` (quoted or not), and what follows.
fn value(v: &[u8]) -> (&[u8], &[u8]) {
    match v.first() {
        Some(q @ (b'"' | b'\'')) => match v[1..].iter().position(|b| b == q) {
            Some(end) => (&v[1..1 + end], &v[2 + end..]),
            None => (&v[1..], &[]),
        },
        _ => {
            let end = v
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b'>')
                .unwrap_or(v.len());
            v.split_at(end)
        }
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: Kind, doc: &[u8], content_type: Option<&str>) -> String {
        let mut out = String::new();
        utf8(kind, doc, content_type, doc)
            .read_to_string(&mut out)
            .expect("UTF-8 out");
        out
    }

    #[test]
    fn declarations_are_found() {
        assert_eq!(
            xml_declaration(b"<?xml version='1.0' encoding='ISO-8859-1'?><a/>").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(xml_declaration(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(
            html_meta(b"<html><head><META CHARSET=\"windows-1252\"><title>").as_deref(),
            Some("windows-1252")
        );
        assert_eq!(
            html_meta(b"<meta http-equiv=Content-Type content=\"text/html; charset=koi8-r\">")
                .as_deref(),
            Some("koi8-r")
        );
        assert_eq!(
            html_meta(b"<meta name=description content=\"charset=x\">"),
            None
        );
        assert_eq!(
            charset_param("text/html; Charset=\"Shift_JIS\"").as_deref(),
            Some("Shift_JIS")
        );
        assert_eq!(charset_param("text/html"), None);
    }

    #[test]
    fn declared_encodings_become_utf8() {
        let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><p>Caf\xe9 na\xefve</p>";
        assert!(text(Kind::Xml, xml, None).contains("Café naïve"));
        let html = b"<html><head><meta charset=windows-1252></head><p>\x93Caf\xe9\x94</p>";
        assert!(text(Kind::Html, html, None).contains("\u{201c}Café\u{201d}"));
        // the Content-Type wins over the document
        let html = b"<meta charset=utf-8><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>";
        assert!(text(Kind::Html, html, Some("text/html; charset=windows-1251")).contains("Привет"));
        // a BOM wins over everything
        let mut utf16 = vec![0xff, 0xfe];
        for u in "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><p>Zoë</p>".encode_utf16() {
            utf16.extend(u.to_le_bytes());
        }
        assert!(text(Kind::Xml, &utf16, None).ends_with("<p>Zoë</p>"));
        // undeclared: UTF-8, passed through (invalid bytes too)
        assert_eq!(text(Kind::Html, b"<p>Zo\xc3\xab</p>", None), "<p>Zoë</p>");
    }
}
