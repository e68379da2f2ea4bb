//! Publication formats made at test time from corpus texts: compressed
//! copies, tar archives (also malicious ones), JATS/XML and HTML articles,
//! and a gzip bomb.

use std::io::Write;

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// `data` zstd-compressed.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd into memory")
}

/// `data` bzip2-compressed.
pub fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).expect("bzip2 into memory");
    e.finish().expect("bzip2 into memory")
}

/// Appends a regular file to a tar being built.
fn append_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, path, data).expect("tar into memory");
}

/// A tar archive of regular files (path, bytes).
pub fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        append_file(&mut b, path, data);
    }
    b.into_inner().expect("tar into memory")
}

/// A tar archive whose second member's path is `../escape.txt` (written
/// raw: the tar crate refuses such paths), after a good member.
pub fn tar_with_parent_path(good: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_file(&mut b, "good.txt", good);
    let bad = b"climbing out\n";
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..14].copy_from_slice(b"../escape.txt\0");
    h.set_size(bad.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &bad[..]).expect("tar");
    b.into_inner().expect("tar")
}

/// A tar archive holding a good member and a symbolic link to `/etc/passwd`.
pub fn tar_with_symlink(good: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_file(&mut b, "good.txt", good);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "passwd.txt", "/etc/passwd")
        .expect("tar");
    b.into_inner().expect("tar")
}

/// A gzip bomb: gzip of gzip of a gzip stream that inflates to `total`
/// zero bytes (a multiple of 1 MiB). The inner stream is made by
/// repeating one compressed block, so making it costs nothing like
/// `total`; the three layers make a few KB.
pub fn gzip_bomb(total: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const MIB: usize = 1 << 20;
    let zeros = vec![0u8; MIB];
    let mut c = Compress::new(Compression::best(), false);
    let mut deflate = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(MIB);
        let before = c.total_in();
        loop {
            let done = (c.total_in() - before) as usize;
            c.compress_vec(&input[done..], &mut out, flush)
                .expect("deflate");
            if (c.total_in() - before) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(MIB);
        }
    };
    // The first MiB, then one MiB more: back-references only, a block that
    // repeats verbatim (the window is all zeros whatever precedes it).
    let first = deflate(&zeros, FlushCompress::Full);
    let block = deflate(&zeros, FlushCompress::Full);
    let end = deflate(&[], FlushCompress::Finish);
    let mut inner = Vec::new();
    // gzip header, no name, no time
    inner.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    inner.extend_from_slice(&first);
    for _ in 2..total / MIB as u64 {
        inner.extend_from_slice(&block);
    }
    inner.extend_from_slice(&block);
    inner.extend_from_slice(&end);
    // CRC-32 and size of the zeros: the limit trips long before they are
    // checked; a wrong CRC would also fail the stream, just later.
    inner.extend_from_slice(&0u32.to_le_bytes());
    inner.extend_from_slice(&((total & 0xffff_ffff) as u32).to_le_bytes());
    gzip(&gzip(&inner))
}

/// Escapes text for XML/HTML (`&`, `<`, `>`) and writes a few characters
/// as character references (`é` → `&#233;`, `—` → `&#x2014;`).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            'é' => out.push_str("&#233;"),
            '—' => out.push_str("&#x2014;"),
            c => out.push(c),
        }
    }
    out
}

/// Paragraphs of a text (split at blank lines), non-empty, trimmed.
fn paragraphs(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A JATS article made of `text`: front (title, abstract), body (sections
/// of paragraphs, inline formatting inside words, citations, MathML and
/// TeX formulas, a comment), back (references).
pub fn jats(text: &str) -> String {
    let paras = paragraphs(text);
    let title = paras.first().copied().unwrap_or("Untitled");
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE article PUBLIC \"-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.2 20190208//EN\" \"JATS-journalpublishing1.dtd\">\n\
<article xmlns:mml=\"http://www.w3.org/1998/Math/MathML\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" article-type=\"research-article\">\n<front><article-meta>\n",
    );
    x += &format!(
        "<title-group><article-title>{}</article-title></title-group>\n",
        escape(title)
    );
    x += "<contrib-group><contrib contrib-type=\"author\"><name><surname>Doe</surname><given-names>Jane</given-names></name></contrib></contrib-group>\n";
    if let Some(a) = paras.get(1) {
        x += &format!("<abstract><p>{}</p></abstract>\n", escape(a));
    }
    x += "</article-meta></front>\n<body>\n";
    for (i, p) in paras.iter().enumerate().skip(2) {
        if i % 7 == 2 {
            if i > 2 {
                x += "</sec>\n";
            }
            x += &format!("<sec id=\"s{i}\"><title>Section {i}</title>\n");
        }
        // A word split by inline formatting: still one word.
        let body = marked_up(p, " the ", " t<italic>h</italic>e ");
        x += &format!(
            "<p>{body} <xref ref-type=\"bibr\" rid=\"r{i}\">[{i}]</xref><!-- note --></p>\n"
        );
        if i % 5 == 0 {
            x += "<disp-formula id=\"e1\"><alternatives><mml:math><mml:mi>x</mml:mi><mml:mo>=</mml:mo><mml:mi>alpha</mml:mi></mml:math><tex-math><![CDATA[\\frac{\\alpha}{beta}]]></tex-math></alternatives></disp-formula>\n";
            x += "<p>where <inline-formula><mml:math><mml:mi>y</mml:mi></mml:math></inline-formula> holds<![CDATA[ & more]]>.</p>\n";
        }
    }
    if paras.len() > 2 {
        x += "</sec>\n";
    }
    x += "</body>\n<back><ref-list><title>References</title>\n";
    for i in 0..3 {
        x += &format!("<ref id=\"r{i}\"><mixed-citation publication-type=\"journal\"><person-group><name><surname>Smith</surname></name></person-group> <article-title>On counting words</article-title>. <source>J. Words</source> <year>20{i:02}</year>; <ext-link ext-link-type=\"uri\" xlink:href=\"https://example.org/{i}\">example</ext-link></mixed-citation></ref>\n");
    }
    x += "</ref-list></back>\n</article>\n";
    x
}

/// `text` escaped, its first `word` (with its spaces) replaced by
/// `markup`: the same word with inline markup inside.
fn marked_up(text: &str, word: &str, markup: &str) -> String {
    let mut body = escape(text);
    if let Some(at) = body.find(word) {
        body.replace_range(at..at + word.len(), markup);
    }
    body
}

/// An HTML page made of `text`: head (title, style, script), body
/// (paragraphs, inline markup inside words, entities, line breaks,
/// comments).
pub fn html(text: &str) -> String {
    let paras = paragraphs(text);
    let title = paras.first().copied().unwrap_or("Untitled");
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h += &format!("<title>{}</title>\n", escape(title));
    h +=
        "<style>body { font-family: serif } p.note::before { content: \"styled words\" }</style>\n";
    h += "<script>if (a < b && c > d) { document.write('scripted words'); }</script>\n";
    h += "</head>\n<body>\n<h1 class=\"title\">";
    h += &escape(title);
    h += "</h1>\n";
    for (i, p) in paras.iter().enumerate().skip(1) {
        let body = marked_up(p, " and ", " a<b>n</b>d ");
        h += &format!(
            "<p id=p{i}>{body}<br>caf&eacute; &amp; cr&egrave;me<!-- hidden words --></p>\n"
        );
        if i % 6 == 0 {
            h += "<ul><li>first item</li><li>second&nbsp;item</li></ul>\n";
        }
    }
    h += "</body></html>\n";
    h
}

/// A PDF file of `objects` (object `i + 1` is `objects[i]`, a dictionary
/// or a stream; object 1 is the catalog), with a correct cross-reference
/// table.
pub fn raw_pdf(objects: &[String]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = objects.iter().map(|o| o.as_bytes().to_vec()).collect();
    raw_pdf_bytes(&bytes)
}

/// A stream object holding `data`.
fn stream(dict: &str, data: &str) -> String {
    format!(
        "<< {dict} /Length {} >>\nstream\n{data}\nendstream",
        data.len()
    )
}

/// The objects of a one-page PDF whose page draws `content` with
/// `resources`, followed by `more` objects (numbered from 5).
fn one_page(content: &str, resources: &str, more: &[String]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources {resources} >>"),
        stream("", content),
    ];
    objects.extend(more.iter().cloned());
    raw_pdf(&objects)
}

/// A PDF of `lines` of text (ASCII, no parentheses or backslashes) in
/// Helvetica, one page.
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 11 Tf 14 TL 72 720 Td\n");
    for l in lines {
        content += &format!("({l}) Tj T*\n");
    }
    content += "ET";
    one_page(
        &content,
        "<< /Font << /F1 5 0 R >> >>",
        &[
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_string(),
        ],
    )
}

/// A PDF whose page draws a form XObject that draws itself: a content
/// stream that loops without end.
pub fn looping_pdf() -> Vec<u8> {
    one_page(
        "BT /F1 11 Tf 72 720 Td (Words before the loop) Tj ET /X1 Do",
        "<< /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >>",
        &[
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
            stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >>",
                "BT /F1 11 Tf 72 700 Td (again) Tj ET /X1 Do",
            ),
        ],
    )
}

/// A PDF whose only page is an image (a scan): no text.
pub fn image_only_pdf() -> Vec<u8> {
    one_page(
        "q 200 0 0 200 100 400 cm /Im1 Do Q",
        "<< /XObject << /Im1 5 0 R >> >>",
        &[stream(
            "/Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8",
            "\u{0}\u{7f}\u{7f}\u{0}",
        )],
    )
}

/// A PDF whose one page shows a word `n` times, in a deflated content
/// stream: small to store, slow to extract (`n` = 1,000,000: seconds).
pub fn slow_pdf(n: usize) -> Vec<u8> {
    let content = "BT /F1 11 Tf 72 720 Td (word) Tj ET\n".repeat(n);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(content.as_bytes())
        .expect("deflate into memory");
    let data = z.finish().expect("deflate into memory");
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
    ];
    let mut stream = format!(
        "<< /Length {} /Filter /FlateDecode >>\nstream\n",
        data.len()
    )
    .into_bytes();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(b"\nendstream");
    objects.push(stream);
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    raw_pdf_bytes(&objects)
}

/// [`raw_pdf`] of objects given as bytes (binary streams).
pub fn raw_pdf_bytes(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
