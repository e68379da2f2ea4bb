//! XML (JATS/NLM articles) and HTML: the text nodes, streamed.
//!
//! What counts is the text a reader sees: text nodes and CDATA, with
//! entities and character references decoded. Tags, attributes, comments,
//! processing instructions and the doctype do not, nor does anything inside
//! `<script>`, `<style>`, MathML `<math>` (any prefix) and JATS
//! `<tex-math>` (formula markup, not words).
//!
//! Element boundaries separate words, except those of inline elements
//! ([`INLINE`]: `<italic>`, `<b>`, `<sub>`, `<a>`…), so `<b>W</b>ord` is
//! one word and `<p>end</p><p>start</p>` two. Comments separate nothing.
//!
//! XML goes through quick-xml (a streaming pull parser, well kept, fast):
//! malformed XML (mismatched tags) fails the document. Named entities
//! other than XML's five are resolved from the HTML5 table (JATS articles
//! use its names through their DTD); unknown ones are dropped (a
//! separator). The internal DTD subset is not read.
//!
//! HTML goes through html5ever's tokenizer (the WHATWG tokenizer of Servo,
//! streaming): it recovers from any malformed input as browsers do, decodes
//! every HTML5 entity, and reads `<script>`/`<style>` bodies raw (a `<` in a
//! script is no tag). Input is UTF-8; invalid bytes become U+FFFD.

use super::Kind;
use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Read};

/// Elements whose boundaries do not separate words (local names, lower
/// case): HTML phrasing markup and JATS formatting elements.
pub const INLINE: &[&str] = &[
    // HTML
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "dfn",
    "em",
    "font",
    "i",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "time",
    "tt",
    "u",
    "var",
    "wbr", // JATS
    "italic",
    "bold",
    "sc",
    "monospace",
    "underline",
    "overline",
    "roman",
    "sans-serif",
    "named-content",
    "styled-content",
    "ext-link",
    "uri",
    "abbrev",
    "xref",
    "email",
];

/// Elements whose content does not count (local names, lower case).
pub const EXCLUDED: &[&str] = &["script", "style", "math", "tex-math"];

fn is_inline(local: &[u8]) -> bool {
    INLINE
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(local))
}

fn is_excluded(local: &[u8]) -> bool {
    EXCLUDED
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(local))
}

/// Extracts the text of an XML or HTML document into `sink`.
pub(crate) fn extract(
    kind: Kind,
    reader: impl Read,
    sink: &mut dyn super::Sink,
) -> std::io::Result<()> {
    match kind {
        Kind::Xml => xml(BufReader::with_capacity(64 << 10, reader), sink),
        Kind::Html => html(reader, sink),
        _ => unreachable!("{} is not markup", kind.name()),
    }
}

/// The local part of a possibly prefixed name (`mml:math` → `math`).
fn local(name: &[u8]) -> &[u8] {
    name.iter()
        .rposition(|&b| b == b':')
        .map_or(name, |i| &name[i + 1..])
}

fn xml(reader: impl BufRead, sink: &mut dyn super::Sink) -> std::io::Result<()> {
    use quick_xml::events::Event;
    let mut parser = quick_xml::Reader::from_reader(reader);
    let mut buf = Vec::with_capacity(64 << 10);
    // Depth inside excluded elements (0: counting).
    let mut skip = 0u32;
    loop {
        let event = parser.read_event_into(&mut buf).map_err(|e| {
            let at = parser.buffer_position();
            match e {
                quick_xml::Error::Io(io) => std::io::Error::new(io.kind(), io.to_string()),
                e => super::described(format!("xml: malformed at byte {at}: {e}")),
            }
        })?;
        match event {
            Event::Start(e) => {
                let name = local(e.name().into_inner());
                if skip > 0 || is_excluded(name) {
                    skip += 1;
                } else if !is_inline(name) {
                    sink.text(b"\n");
                }
            }
            Event::End(e) => {
                if skip > 0 {
                    skip -= 1;
                    if skip == 0 {
                        sink.text(b"\n");
                    }
                } else if !is_inline(local(e.name().into_inner())) {
                    sink.text(b"\n");
                }
            }
            Event::Empty(e) if skip == 0 && !is_inline(local(e.name().into_inner())) => {
                sink.text(b"\n");
            }
            Event::Text(t) if skip == 0 => sink.text(&t),
            Event::CData(t) if skip == 0 => sink.text(&t),
            Event::GeneralRef(r) if skip == 0 => {
                let name = String::from_utf8_lossy(&r);
                if let Some(num) = name.strip_prefix('#') {
                    let c = parse_char_ref(num).ok_or_else(|| {
                        super::described(format!(
                            "xml: bad character reference &{name}; near byte {}",
                            parser.buffer_position()
                        ))
                    })?;
                    sink.text(c.encode_utf8(&mut [0; 4]).as_bytes());
                } else if let Some(s) = quick_xml::escape::resolve_xml_entity(&name)
                    .or_else(|| quick_xml::escape::resolve_html5_entity(&name))
                {
                    sink.text(s.as_bytes());
                } else {
                    sink.text(b" ");
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

/// `#x2014` or `#233` without the `#`, as a character.
fn parse_char_ref(num: &str) -> Option<char> {
    let code = match num.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => num.parse().ok()?,
    };
    char::from_u32(code).filter(|&c| c != '\0')
}

/// The html5ever token sink: text nodes out, the rest dropped.
struct HtmlText<'a> {
    out: RefCell<&'a mut dyn super::Sink>,
    skip: Cell<u32>,
}

impl html5ever::tokenizer::TokenSink for HtmlText<'_> {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        use html5ever::tokenizer::{TagKind, Token, TokenSinkResult};
        let mut out = self.out.borrow_mut();
        match token {
            Token::CharacterTokens(t) if self.skip.get() == 0 => out.text(t.as_bytes()),
            Token::TagToken(tag) => {
                let name = tag.name.as_bytes();
                let skip = self.skip.get();
                match tag.kind {
                    TagKind::StartTag if !tag.self_closing && (skip > 0 || is_excluded(name)) => {
                        self.skip.set(skip + 1)
                    }
                    TagKind::EndTag if skip > 0 => {
                        self.skip.set(skip - 1);
                        if skip == 1 {
                            out.text(b"\n");
                        }
                    }
                    _ if skip == 0 && !is_inline(name) => out.text(b"\n"),
                    _ => {}
                }
                if tag.kind == TagKind::StartTag && !tag.self_closing {
                    match name {
                        b"script" => return TokenSinkResult::RawData(RawKind::ScriptData),
                        b"style" => return TokenSinkResult::RawData(RawKind::Rawtext),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn html(mut reader: impl Read, sink: &mut dyn super::Sink) -> std::io::Result<()> {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{BufferQueue, Tokenizer, TokenizerOpts};
    let tok = Tokenizer::new(
        HtmlText {
            out: RefCell::new(sink),
            skip: Cell::new(0),
        },
        TokenizerOpts::default(),
    );
    let queue = BufferQueue::default();
    let mut buf = vec![0u8; 64 << 10];
    // Bytes of an incomplete UTF-8 sequence at the end of the last read.
    let mut carry = 0;
    loop {
        let n = match reader.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = carry + n;
        let upto = if n == 0 {
            end
        } else {
            complete_utf8(&buf[..end])
        };
        let text = String::from_utf8_lossy(&buf[..upto]);
        queue.push_back(StrTendril::from_slice(&text));
        while let html5ever::TokenizerResult::Script(()) = tok.feed(&queue) {}
        if n == 0 {
            tok.end();
            return Ok(());
        }
        buf.copy_within(upto..end, 0);
        carry = end - upto;
    }
}

/// The length of `b` without an incomplete UTF-8 sequence at its end.
fn complete_utf8(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let i = b.len() - back;
        let c = b[i];
        if c & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = match c {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if need > back { i } else { b.len() };
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(String);
    impl super::super::Sink for Collect {
        fn begin(&mut self, _: &str, _: &str, _: bool) {}
        fn text(&mut self, b: &[u8]) {
            self.0.push_str(&String::from_utf8_lossy(b));
        }
        fn end(&mut self) {}
    }

    fn words(kind: Kind, doc: &str) -> Vec<String> {
        let mut c = Collect(String::new());
        extract(kind, doc.as_bytes(), &mut c).unwrap();
        c.0.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn xml_text_nodes() {
        let doc = r#"<?xml version="1.0"?><!DOCTYPE article><article xmlns:mml="m">
<front><title>Caf&#233; &amp; <italic>Bar</italic>s</title></front>
<body><p>One<xref rid="b1">1</xref> two&nbsp;three<!-- no --></p><p>four</p>
<disp-formula><mml:math><mml:mi>x</mml:mi></mml:math><tex-math>\frac{a}{b}</tex-math></disp-formula>
<p><![CDATA[five <six>]]></p></body></article>"#;
        assert_eq!(
            words(Kind::Xml, doc),
            ["Café", "&", "Bars", "One1", "two", "three", "four", "five", "<six>"]
        );
    }

    #[test]
    fn malformed_xml_fails_with_a_reason() {
        let mut c = Collect(String::new());
        let e = extract(Kind::Xml, &b"<a><b></a>"[..], &mut c).unwrap_err();
        assert!(e.to_string().starts_with("xml: malformed"), "{e}");
    }

    #[test]
    fn html_text_nodes() {
        let doc = "<!DOCTYPE html><html><head><title>T&eacute;</title><style>p{}</style>\
<script>if (a<b) x()</script></head><body><p>W<b>or</b>d<br>next &lt;tag&gt;</p>\
<p>é</p></body></html>";
        assert_eq!(words(Kind::Html, doc), ["Té", "Word", "next", "<tag>", "é"]);
    }

    #[test]
    fn utf8_split_across_reads() {
        assert_eq!(complete_utf8("aé".as_bytes()), 3);
        assert_eq!(complete_utf8(&"aé".as_bytes()[..2]), 1);
        assert_eq!(complete_utf8(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(complete_utf8(b"a\xff"), 2);
    }
}
