//! Issue 16 without a stack: `count-local` over real publication formats.
//!
//! - compressed (gzip, zstd, bzip2, concatenated gzip members) and archived
//!   (tar, tar.gz, a tar of gzip members) copies of corpus texts count
//!   exactly as the plain texts; `--format text` counts their bytes;
//! - XML (JATS) and HTML built from corpus texts, and the committed
//!   fixtures, count exactly what a Python reference extracts
//!   (`tests/markup_text.py`: `xml.etree` / `html.parser`, then the oracle
//!   tokenizer `tests/oracle.py`);
//! - bad inputs (truncated gzip, a gzip bomb of 10 GiB, tars with `../`
//!   paths and symlinks, malformed XML) fail with a one-line reason, and
//!   with `--keep-going` the other inputs still count exactly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::cli::{offline_cmd, stdout_of};
use testkit::corpus;
use testkit::counts::{count_local, diff_counts, Counts};
use testkit::formats as fmt;

/// Corpus texts: the demo files and a few papers, as (name, bytes).
fn texts() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = corpus::objects(&["demo"])
        .into_iter()
        .chain(corpus::papers(0, 12))
        .map(|(key, path)| {
            let name = key.rsplit('/').next().unwrap_or(&key).to_string();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    out.sort();
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    p
}

fn subdir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn assert_same(what: &str, got: &Counts, want: &Counts) {
    let diff = diff_counts(got, want);
    assert!(diff.is_empty(), "{what}: {diff}");
}

#[test]
fn compressed_and_archived_texts_count_as_the_plain_texts() {
    let texts = texts();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let plain = subdir(root, "plain");
    for (name, data) in &texts {
        write(&plain, name, data);
    }
    let want = count_local(&[plain]);

    let mut variants: Vec<(&str, PathBuf)> = Vec::new();
    for (ext, compress) in [
        ("gz", fmt::gzip as fn(&[u8]) -> Vec<u8>),
        ("zst", fmt::zstd),
        ("bz2", fmt::bzip2),
    ] {
        let d = subdir(root, ext);
        for (name, data) in &texts {
            write(&d, &format!("{name}.{ext}"), &compress(data));
        }
        variants.push((ext, d));
    }
    let members: Vec<(&str, &[u8])> = texts
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let tar = fmt::tar(&members);
    let d = subdir(root, "tar");
    write(&d, "all.tar", &tar);
    variants.push(("tar", d));
    let d = subdir(root, "tgz");
    write(&d, "all.tar.gz", &fmt::gzip(&tar));
    variants.push(("tar.gz", d));
    let d = subdir(root, "tzst");
    write(&d, "all.tar.zst", &fmt::zstd(&tar));
    variants.push(("tar.zst", d));
    // arXiv's bulk layout: a tar of gzip-compressed documents.
    let gz: Vec<(String, Vec<u8>)> = texts
        .iter()
        .map(|(n, d)| (format!("{n}.gz"), fmt::gzip(d)))
        .collect();
    let gz_members: Vec<(&str, &[u8])> =
        gz.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let d = subdir(root, "tar-of-gz");
    write(&d, "papers.tar", &fmt::tar(&gz_members));
    variants.push(("tar of gz", d));

    for (what, dir) in &variants {
        assert_same(what, &count_local(std::slice::from_ref(dir)), &want);
    }

    // Concatenated gzip members are one stream, as `gzip -d` reads them.
    let (a, b) = (&texts[0].1, &texts[1].1);
    let joined = [a.as_slice(), b.as_slice()].concat();
    let d = subdir(root, "concat");
    let whole = write(&d, "joined.txt", &joined);
    let members = write(&d, "joined.txt.gz", &[fmt::gzip(a), fmt::gzip(b)].concat());
    assert_same(
        "concatenated gzip members",
        &count_local(std::slice::from_ref(&members)),
        &count_local(&[whole]),
    );

    // --format text: every byte is text (the seed's behaviour).
    let out = offline_cmd(&["count-local", "-q", "-o", "tsv", "--format", "text"])
        .arg(&members)
        .output()
        .expect("count-local");
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("the\t"),
        "--format text decompressed"
    );

    // -v names the format found.
    let out = offline_cmd(&["count-local", "-v", "-o", "tsv"])
        .arg(&members)
        .output()
        .expect("count-local");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("joined.txt.gz: gzip+text, "),
        "-v: {stderr}"
    );
}

/// `python3 tests/markup_text.py FILE | python3 tests/oracle.py -`: the
/// reference TSV of a markup file.
fn reference_tsv(file: &Path) -> String {
    let repo = testkit::repo();
    let text = Command::new("python3")
        .arg(repo.join("tests/markup_text.py"))
        .arg(file)
        .output()
        .expect("python3 runs");
    let text = stdout_of(&format!("markup_text.py {}", file.display()), text);
    let mut oracle = Command::new("python3")
        .arg(repo.join("tests/oracle.py"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        let mut stdin = oracle.stdin.take().expect("stdin");
        stdin.write_all(&text).expect("feeding the oracle");
    }
    let out = oracle.wait_with_output().expect("oracle");
    assert!(out.status.success(), "oracle failed");
    let out = String::from_utf8(out.stdout).expect("UTF-8");
    let at = out.rfind("#all\t").expect("#all section");
    let section = &out[at..];
    section[section.find('\n').map_or(section.len(), |i| i + 1)..].to_string()
}

fn count_local_tsv(file: &Path) -> String {
    let out = offline_cmd(&["count-local", "-q", "-o", "tsv"])
        .arg(file)
        .output()
        .expect("count-local");
    String::from_utf8(stdout_of(&format!("count-local {}", file.display()), out)).expect("UTF-8")
}

#[test]
fn markup_counts_the_text_nodes_as_python_does() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut files: Vec<PathBuf> =
        corpus::files_under(&testkit::repo().join("tests/fixtures/formats"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "xml" || e == "html"))
            .collect();
    assert!(files.len() >= 2, "the committed fixtures");
    for (name, data) in texts() {
        let text = String::from_utf8_lossy(&data);
        files.push(write(
            tmp.path(),
            &format!("{name}.xml"),
            fmt::jats(&text).as_bytes(),
        ));
        files.push(write(
            tmp.path(),
            &format!("{name}.html"),
            fmt::html(&text).as_bytes(),
        ));
    }
    // Documents in the encodings they declare (`format::charset`).
    let accents = "Café naïve Zoë façade déjà vu Größe «guillemets»";
    let latin1: Vec<u8> = accents.chars().map(|c| c as u32 as u8).collect();
    let mut xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<article><p>".to_vec();
    xml.extend(&latin1);
    xml.extend(b"</p></article>\n");
    files.push(write(tmp.path(), "declared-latin1.xml", &xml));
    let mut utf16 = vec![0xff, 0xfe];
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<article><p>{accents} Привет</p></article>\n"
    );
    for u in doc.encode_utf16() {
        utf16.extend(u.to_le_bytes());
    }
    files.push(write(tmp.path(), "utf16.xml", &utf16));
    let mut html =
        b"<html><head><meta charset=\"windows-1252\"><title>t</title></head><body><p>".to_vec();
    html.extend(&latin1);
    html.extend(b" \x93quoted\x94 \x97 dash</p></body></html>\n");
    files.push(write(tmp.path(), "declared-cp1252.html", &html));
    for file in &files {
        let got = count_local_tsv(file);
        let want = reference_tsv(file);
        assert!(!want.is_empty(), "{}: no words", file.display());
        if got != want {
            let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
            let only_got: Vec<&&str> = g.iter().filter(|l| !w.contains(l)).take(10).collect();
            let only_want: Vec<&&str> = w.iter().filter(|l| !g.contains(l)).take(10).collect();
            panic!(
                "{}: count-local differs from the Python reference\n  ours only: {only_got:?}\n  reference only: {only_want:?}",
                file.display()
            );
        }
        for hidden in [
            "scripted",
            "styled",
            "hidden",
            "secret",
            "injected",
            "generated",
        ] {
            assert!(
                !got.lines().any(|l| l.starts_with(&format!("{hidden}\t"))),
                "{}: {hidden} counted",
                file.display()
            );
        }
    }
}

/// Runs `count-local FILE` expecting exit 1 and one line naming the file
/// and `reason`.
fn fails(file: &Path, reason: &str) {
    fails_with(&[], file, reason)
}

/// [`fails`] with more flags.
fn fails_with(flags: &[&str], file: &Path, reason: &str) {
    let out = offline_cmd(&["count-local", "-o", "tsv"])
        .args(flags)
        .arg(file)
        .output()
        .expect("count-local");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", file.display());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let prefix = format!("wordstream: error: cannot count {}: ", file.display());
    assert!(
        stderr.starts_with(&prefix) && stderr.contains(reason),
        "{stderr:?} should start {prefix:?} and contain {reason:?}"
    );
}

#[test]
fn bad_inputs_fail_with_a_reason_and_the_rest_still_counts() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let good = corpus::read("demo/A1.headed.txt");
    let gz = fmt::gzip(&good);
    let bomb = fmt::gzip_bomb(10 << 30);
    assert!(bomb.len() < 64 << 10, "the bomb is {} bytes", bomb.len());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.txt.gz",
            gz[..gz.len() / 2].to_vec(),
            "gzip: truncated",
        ),
        ("bomb.gz", bomb, "over the expansion limit"),
        (
            "climb.tar",
            fmt::tar_with_parent_path(&good),
            "member 2 (../escape.txt): its path leaves the archive",
        ),
        (
            "link.tar",
            fmt::tar_with_symlink(&good),
            "member 2 (passwd.txt) is a symbolic link, not a regular file",
        ),
        (
            "broken.xml",
            b"<?xml version=\"1.0\"?><article><p>text</sec></article>".to_vec(),
            "xml: malformed",
        ),
    ];
    let bad = subdir(dir, "bad");
    for (name, data, reason) in &cases {
        let started = std::time::Instant::now();
        fails(&write(&bad, name, data), reason);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
    }

    // With --keep-going, the good inputs among them count exactly.
    write(&bad, "good.txt", &good);
    write(&bad, "good2.txt.gz", &fmt::gzip(&good));
    let out = offline_cmd(&["count-local", "--keep-going", "-o", "tsv"])
        .arg(&bad)
        .output()
        .expect("count-local");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with(&format!(
            "wordstream: error: {} input(s) could not be read\n",
            cases.len()
        )),
        "{stderr}"
    );
    let got: Counts = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| {
            let (w, n) = l.rsplit_once('\t').expect("word\tcount");
            (w.to_string(), n.parse().expect("count"))
        })
        .collect();
    let one = count_local(&[write(dir, "one.txt", &good)]);
    assert_same("good inputs", &got, &testkit::counts::times(&one, 2));
}

#[test]
fn pdf_text_counts_as_the_text_a_reader_sees() {
    let fixtures = testkit::repo().join("tests/fixtures/formats");
    // Typeset from a known text: hyphenated line ends, ligature glyphs.
    let got = count_local(&[fixtures.join("typeset.pdf")]);
    let want = count_local(&[fixtures.join("typeset.txt")]);
    assert_same("typeset.pdf", &got, &want);
    for word in ["influence", "officials", "waffles", "characterization"] {
        assert!(got.contains_key(word), "{word} missing: {got:?}");
    }
    // A plain Helvetica PDF, compressed, in a tar.
    let lines = [
        "The first line of a simple PDF",
        "and its second line of words",
    ];
    let pdf = fmt::text_pdf(&lines);
    let tmp = tempfile::tempdir().expect("temp dir");
    let text = write(tmp.path(), "simple.txt", lines.join("\n").as_bytes());
    let tar = fmt::tar(&[("a/simple.pdf", &pdf)]);
    let archived = write(tmp.path(), "simple.tar.gz", &fmt::gzip(&tar));
    assert_same(
        "simple.pdf in a tar.gz",
        &count_local(&[archived]),
        &count_local(&[text]),
    );
}

#[test]
fn bad_pdfs_fail_with_a_reason() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let good = fmt::text_pdf(&["some words"]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "encrypted.pdf",
            std::fs::read(testkit::repo().join("tests/fixtures/formats/encrypted.pdf"))
                .expect("fixture"),
            "pdf: encrypted",
        ),
        ("image-only.pdf", fmt::image_only_pdf(), "pdf: no text"),
        ("truncated.pdf", good[..good.len() / 3].to_vec(), "pdf: "),
        (
            "looping.pdf",
            fmt::looping_pdf(),
            "pdf: the extractor overflowed its stack",
        ),
    ];
    // A PDF that takes seconds to extract, under a 1 s limit.
    let started = std::time::Instant::now();
    fails_with(
        &["--pdf-timeout", "1"],
        &write(dir, "slow.pdf", &fmt::slow_pdf(1_000_000)),
        "pdf: extraction took longer than 1 s (--pdf-timeout)",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    for (name, data, reason) in &cases {
        let started = std::time::Instant::now();
        fails_with(&["--pdf-timeout", "5"], &write(dir, name, data), reason);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
    }
}
