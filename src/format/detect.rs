//! Format detection: magic bytes first, then the S3 Content-Encoding and
//! Content-Type, then the file extension.
//!
//! Binary formats (gzip, zstd, bzip2, tar, PDF) are recognized by their
//! magic bytes only: a hint alone never makes bytes be decompressed or
//! parsed (wrong hints are common, and a text file named `.gz` is still
//! text). Hints decide between plain text, XML and HTML when the first
//! bytes do not (an XML document without a declaration, HTML without a
//! doctype). Content-Type describes what is under the Content-Encoding: it
//! applies after the decoding that Content-Encoding names, and the inner
//! name of `paper.xml.gz` is `paper.xml`.

/// Bytes read to detect a format (tar's magic is at offset 257; a PDF
/// header may follow up to 1 KiB of junk).
pub const SNIFF_BYTES: usize = 1024;

/// A detected format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Plain text: every byte is text.
    Text,
    /// gzip (RFC 1952), members concatenated as `gzip -d` reads them.
    Gzip,
    /// Zstandard frames.
    Zstd,
    /// bzip2 streams.
    Bzip2,
    /// A POSIX (ustar/GNU/pax) tar archive.
    Tar,
    /// XML (JATS/NLM articles and any other XML).
    Xml,
    /// HTML.
    Html,
    /// PDF.
    Pdf,
}

impl Kind {
    /// The name recorded in the ledger and printed by `count-local -v`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Gzip => "gzip",
            Kind::Zstd => "zstd",
            Kind::Bzip2 => "bzip2",
            Kind::Tar => "tar",
            Kind::Xml => "xml",
            Kind::Html => "html",
            Kind::Pdf => "pdf",
        }
    }
}

/// What is known of a document besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// File path or object key (its extension is a hint).
    pub name: String,
    /// S3 Content-Type.
    pub content_type: Option<String>,
    /// S3 Content-Encoding.
    pub content_encoding: Option<String>,
}

impl Hints {
    /// Hints naming a file or key only.
    pub fn named(name: impl Into<String>) -> Hints {
        Hints {
            name: name.into(),
            ..Hints::default()
        }
    }

    /// The hints of what decoding `kind` yields: the name without the
    /// compression extension; the Content-Type if the Content-Encoding
    /// named this decoding (it describes the decoded content), else none.
    pub fn inside(&self, kind: Kind) -> Hints {
        let lower = self.name.to_ascii_lowercase();
        let name = if lower.ends_with(".tgz") || lower.ends_with(".tbz2") {
            format!("{}.tar", &self.name[..self.name.rfind('.').unwrap_or(0)])
        } else {
            let ext = match kind {
                Kind::Gzip => ".gz",
                Kind::Zstd => ".zst",
                Kind::Bzip2 => ".bz2",
                _ => "",
            };
            match lower.strip_suffix(ext) {
                Some(stem) if !ext.is_empty() => self.name[..stem.len()].to_string(),
                _ => String::new(),
            }
        };
        let encoded = self
            .content_encoding
            .as_deref()
            .is_some_and(|e| encoding_kind(e) == Some(kind));
        Hints {
            name,
            content_type: if encoded {
                self.content_type.clone()
            } else {
                None
            },
            content_encoding: None,
        }
    }

    /// The markup format the hints name, if any.
    fn markup(&self) -> Option<Kind> {
        if self.content_encoding.is_none() {
            if let Some(ct) = &self.content_type {
                let ct = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                match ct.as_str() {
                    "text/html" | "application/xhtml+xml" => return Some(Kind::Html),
                    "text/xml" | "application/xml" => return Some(Kind::Xml),
                    _ if ct.ends_with("+xml") => return Some(Kind::Xml),
                    "text/plain" => return Some(Kind::Text),
                    _ => {}
                }
            }
        }
        let lower = self.name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
        match ext {
            "html" | "htm" | "xhtml" => Some(Kind::Html),
            "xml" | "nxml" | "jats" => Some(Kind::Xml),
            _ => None,
        }
    }
}

/// The compression a Content-Encoding value names.
fn encoding_kind(value: &str) -> Option<Kind> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Some(Kind::Gzip),
        "zstd" => Some(Kind::Zstd),
        "bzip2" | "x-bzip2" => Some(Kind::Bzip2),
        _ => None,
    }
}

/// The format of a document whose first bytes (up to [`SNIFF_BYTES`], all
/// of it if shorter) are `prefix`.
pub fn detect(prefix: &[u8], hints: &Hints) -> Kind {
    if let Some(kind) = binary_magic(prefix) {
        return kind;
    }
    if let Some(kind) = markup_magic(prefix) {
        // XHTML declared as XML stays HTML when the hints say so.
        return match (kind, hints.markup()) {
            (Kind::Xml, Some(Kind::Html)) => Kind::Html,
            _ => kind,
        };
    }
    match hints.markup() {
        Some(kind) if starts_with_tag(prefix) => kind,
        _ => Kind::Text,
    }
}

/// gzip, zstd, bzip2, tar or PDF by their magic bytes.
fn binary_magic(p: &[u8]) -> Option<Kind> {
    if p.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Some(Kind::Gzip);
    }
    if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Kind::Zstd);
    }
    // "BZh" + block size 1-9 + the block magic (π) or the end-of-stream
    // magic (√π, an empty stream): a text starting "BZh9" stays text.
    if p.len() >= 10
        && p.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&p[3])
        && (p[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
            || p[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
    {
        return Some(Kind::Bzip2);
    }
    if p.len() >= 262 && &p[257..262] == b"ustar" && tar_checksum_ok(p) {
        return Some(Kind::Tar);
    }
    if p.windows(5).take(SNIFF_BYTES - 4).any(|w| w == b"%PDF-") && p.len() > 8 {
        return Some(Kind::Pdf);
    }
    None
}

/// The header checksum of a tar's first block, as far as it is read.
fn tar_checksum_ok(p: &[u8]) -> bool {
    if p.len() < 512 {
        return false;
    }
    let field = String::from_utf8_lossy(&p[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = p[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == want
}

/// XML or HTML by how they start (after a BOM and white space; a UTF-16
/// document is looked at as UTF-8).
fn markup_magic(p: &[u8]) -> Option<Kind> {
    if let Some(p) = utf16_as_utf8(p) {
        return markup_magic(&p);
    }
    let p = lead_trimmed(p);
    let lower: Vec<u8> = p.iter().take(64).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<?xml") {
        // XHTML and JATS both start so: the root decides.
        let rest = &p[p
            .windows(2)
            .position(|w| w == b"?>")
            .map_or(p.len(), |i| i + 2)..];
        return Some(match markup_magic(rest) {
            Some(Kind::Html) => Kind::Html,
            _ => Kind::Xml,
        });
    }
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return Some(Kind::Html);
    }
    if lower.starts_with(b"<!doctype article") || lower.starts_with(b"<article") {
        return Some(Kind::Xml);
    }
    None
}

/// Whether the document's first character (after a BOM and white space) is
/// `<`: a hint makes markup only of what looks like markup.
fn starts_with_tag(p: &[u8]) -> bool {
    match utf16_as_utf8(p) {
        Some(p) => lead_trimmed(&p).first() == Some(&b'<'),
        None => lead_trimmed(p).first() == Some(&b'<'),
    }
}

/// `p` decoded to UTF-8 if it starts with a UTF-16 byte order mark.
fn utf16_as_utf8(p: &[u8]) -> Option<Vec<u8>> {
    let (encoding, bom) = encoding_rs::Encoding::for_bom(p)?;
    (encoding != encoding_rs::UTF_8).then(|| {
        let (text, _) = encoding.decode_without_bom_handling(&p[bom..]);
        text.into_owned().into_bytes()
    })
}

/// `p` without a UTF-8 BOM and leading white space.
pub(super) fn lead_trimmed(p: &[u8]) -> &[u8] {
    let p = p.strip_prefix(b"\xef\xbb\xbf").unwrap_or(p);
    let start = p
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(p.len());
    &p[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &[u8], name: &str) -> Kind {
        detect(p, &Hints::named(name))
    }

    #[test]
    fn magic_first() {
        assert_eq!(kind(&[0x1f, 0x8b, 8, 0], "a.txt"), Kind::Gzip);
        assert_eq!(kind(&[0x28, 0xb5, 0x2f, 0xfd, 0], "a"), Kind::Zstd);
        assert_eq!(kind(b"BZh91AY&SYxx", "a"), Kind::Bzip2);
        assert_eq!(kind(b"BZh9 is not bzip2", "a.bz2"), Kind::Text);
        assert_eq!(kind(b"%PDF-1.7\n%abc", "a.txt"), Kind::Pdf);
        assert_eq!(kind(b"<?xml version='1.0'?><article/>", "a"), Kind::Xml);
        assert_eq!(
            kind(b"<?xml version='1.0'?>\n<html xmlns='x'>", "a"),
            Kind::Html
        );
        assert_eq!(kind(b"\xef\xbb\xbf <!DOCTYPE HTML><p>", "a"), Kind::Html);
    }

    #[test]
    fn hints_decide_text_formats_only() {
        assert_eq!(kind(b"plain words", "a.gz"), Kind::Text);
        assert_eq!(kind(b"plain words", "a.xml"), Kind::Text);
        assert_eq!(kind(b"<p>para</p>", "a.html"), Kind::Html);
        assert_eq!(kind(b"<sec>para</sec>", "a.nxml"), Kind::Xml);
        assert_eq!(kind(b"<p>para</p>", "a.txt"), Kind::Text);
        let h = Hints {
            name: "k".into(),
            content_type: Some("text/html; charset=utf-8".into()),
            content_encoding: None,
        };
        assert_eq!(detect(b"<p>x</p>", &h), Kind::Html);
    }

    #[test]
    fn inner_hints() {
        let h = Hints::named("dir/paper.XML.gz");
        assert_eq!(h.inside(Kind::Gzip).name, "dir/paper.XML");
        assert_eq!(Hints::named("a.tgz").inside(Kind::Gzip).name, "a.tar");
        assert_eq!(Hints::named("a.gz").inside(Kind::Zstd).name, "");
        let h = Hints {
            name: "k".into(),
            content_type: Some("text/html".into()),
            content_encoding: Some("gzip".into()),
        };
        assert_eq!(h.markup(), None);
        assert_eq!(h.inside(Kind::Gzip).markup(), Some(Kind::Html));
        assert_eq!(h.inside(Kind::Zstd).markup(), None);
    }
}
