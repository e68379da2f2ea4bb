//! Differential test: `wordstream count-local` against the Python reference
//! `tests/oracle.py` (`re.findall(r'\w+', text)` → keep `w.isalpha()` →
//! `collections.Counter`, docs/design.md §1).
//!
//! Covers every file of the corpus and generated adversarial inputs, in both
//! encodings, with and without `--lowercase`, through files, directories and
//! stdin fed in small pieces, with one and several threads. The TSV output
//! must equal the oracle's byte for byte, and the summary's word, distinct
//! and invalid byte counts must equal Python's.
//!
//! The corpus is the test kit's (`tests/corpus`, or `$WORDSTREAM_CORPUS`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::cli::offline_cmd;
use testkit::corpus::{self, files_under, Rng, SNIPPETS};
use testkit::counts::{option_flags, ALL_OPTIONS};
use wordstream::count::{self, Options};
use wordstream::output::{self, Format};
use wordstream::tokenize::Encoding;

// ---------------------------------------------------------------------------
// Configurations

const UTF8: Options = ALL_OPTIONS[0];
const UTF8_LOWER: Options = ALL_OPTIONS[1];
const LATIN1: Options = ALL_OPTIONS[2];
const LATIN1_LOWER: Options = ALL_OPTIONS[3];

// ---------------------------------------------------------------------------
// Results and their comparison

/// The result of one count: the TSV and the totals.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    words: u64,
    distinct: u64,
    invalid: u64,
    tsv: Vec<u8>,
}

/// Panics with a readable report when `actual` differs from the oracle.
fn check(what: &str, expected: &Counts, actual: &Counts) {
    if expected == actual {
        return;
    }
    let mut report = format!(
        "{what}: count-local differs from the Python oracle\n\
         \x20 oracle: {} words, {} distinct, {} invalid bytes, {} TSV bytes\n\
         \x20 ours:   {} words, {} distinct, {} invalid bytes, {} TSV bytes\n",
        expected.words,
        expected.distinct,
        expected.invalid,
        expected.tsv.len(),
        actual.words,
        actual.distinct,
        actual.invalid,
        actual.tsv.len(),
    );
    if expected.tsv != actual.tsv {
        let (e, a) = (parse_tsv(&expected.tsv), parse_tsv(&actual.tsv));
        let mut shown = 0;
        for word in e.keys().chain(a.keys().filter(|w| !e.contains_key(*w))) {
            let (x, y) = (e.get(word), a.get(word));
            if x != y && shown < 15 {
                let _ = writeln!(
                    report,
                    "  {:?}: oracle {x:?}, ours {y:?}",
                    String::from_utf8_lossy(word)
                );
                shown += 1;
            }
        }
        if shown == 0 {
            // Same counts, different bytes: the order or the format differs.
            let first = expected
                .tsv
                .split(|&b| b == b'\n')
                .zip(actual.tsv.split(|&b| b == b'\n'))
                .position(|(x, y)| x != y);
            let _ = writeln!(
                report,
                "  same counts, lines differ first at line {first:?}"
            );
        }
    }
    panic!("{report}");
}

fn parse_tsv(tsv: &[u8]) -> BTreeMap<Vec<u8>, String> {
    tsv.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let tab = l.iter().rposition(|&b| b == b'\t').unwrap_or(l.len());
            let n = String::from_utf8_lossy(l.get(tab + 1..).unwrap_or_default()).into_owned();
            (l[..tab].to_vec(), n)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The oracle

/// One section of the oracle's output.
struct Section {
    tag: String,
    name: String,
    counts: Counts,
}

/// Runs tests/oracle.py over `paths` (`--per-file` adds one section per file).
fn oracle(cfg: Options, per_file: bool, paths: &[&Path]) -> Vec<Section> {
    let script = testkit::repo().join("tests/oracle.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).args(option_flags(cfg));
    if per_file {
        cmd.arg("--per-file");
    }
    let out = cmd
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs (the oracle needs python3 on PATH)");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sections: Vec<Section> = Vec::new();
    for line in out.stdout.split_inclusive(|&b| b == b'\n') {
        if let Some(header) = line.strip_prefix(b"#") {
            let header = String::from_utf8_lossy(header);
            let f: Vec<&str> = header.trim_end_matches('\n').split('\t').collect();
            assert_eq!(f.len(), 5, "oracle header {header:?}");
            let num = |s: &str| s.parse::<u64>().expect("oracle header number");
            sections.push(Section {
                tag: f[0].to_string(),
                name: f[1].to_string(),
                counts: Counts {
                    invalid: num(f[2]),
                    words: num(f[3]),
                    distinct: num(f[4]),
                    tsv: Vec::new(),
                },
            });
        } else {
            let s = sections
                .last_mut()
                .expect("oracle output starts with a header");
            s.counts.tsv.extend_from_slice(line);
        }
    }
    assert_eq!(sections.last().map(|s| s.tag.as_str()), Some("all"));
    sections
}

fn find<'a>(sections: &'a [Section], tag: &str, name: &Path) -> &'a Counts {
    let name = name.to_string_lossy();
    &sections
        .iter()
        .find(|s| s.tag == tag && s.name == name)
        .unwrap_or_else(|| panic!("no oracle section #{tag} {name}"))
        .counts
}

// ---------------------------------------------------------------------------
// wordstream

/// Parses count-local's stderr summary into `counts` (words, distinct, invalid).
fn parse_summary(stderr: &[u8], counts: &mut Counts) {
    let stderr = String::from_utf8_lossy(stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("count-local:"))
        .unwrap_or_else(|| panic!("no summary on stderr: {stderr}"));
    let field = |label: &str| -> u64 {
        line.split(", ")
            .find_map(|f| f.trim_start_matches("count-local: ").strip_suffix(label))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in summary {line:?}"))
    };
    counts.words = field(" words");
    counts.distinct = field(" distinct");
    counts.invalid = field(" invalid bytes");
}

/// Runs `wordstream count-local --output tsv` with the config's flags,
/// `extra` flags and `paths`.
fn count_local<P: AsRef<OsStr>>(cfg: Options, extra: &[&str], paths: &[P]) -> Counts {
    let out = offline_cmd(&["count-local"])
        .args(option_flags(cfg))
        .args(["--output", "tsv"])
        .args(extra)
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .expect("wordstream runs");
    finish(out)
}

fn finish(out: std::process::Output) -> Counts {
    assert!(
        out.status.success(),
        "count-local failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = Counts {
        tsv: out.stdout,
        ..Counts::default()
    };
    parse_summary(&out.stderr, &mut counts);
    counts
}

/// Runs count-local on stdin, writing `input` in pieces of the given sizes
/// (cycled) with a pause after each, so that its reads see those pieces.
fn count_local_stdin(cfg: Options, input: &[u8], pieces: &[usize]) -> Counts {
    let mut child = offline_cmd(&["count-local"])
        .args(option_flags(cfg))
        .args(["--output", "tsv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wordstream runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let pieces = pieces.to_vec();
    let writer = std::thread::spawn(move || {
        let mut rest = &input[..];
        for &n in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            stdin.write_all(piece).expect("write to count-local");
            stdin.flush().expect("flush");
            rest = tail;
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let out = child.wait_with_output().expect("count-local ends");
    writer.join().expect("writer thread");
    finish(out)
}

/// The core in process: `count::count_bytes` rendered like count-local.
fn count_in_process(cfg: Options, input: &[u8], threads: usize) -> Counts {
    let c = count::count_bytes(input, cfg, threads);
    let mut tsv = Vec::new();
    output::write_counts(&mut tsv, &c.sorted(), Format::Tsv).expect("write to memory");
    Counts {
        words: c.words,
        distinct: c.distinct() as u64,
        invalid: c.invalid_bytes,
        tsv,
    }
}

// ---------------------------------------------------------------------------
// The corpus

/// The whole corpus through the binary (all threads and one thread), the
/// books and demo files one by one through the binary, and every file one by
/// one through the core in process; one oracle run for all of it.
fn corpus_against_oracle(cfg: Options) {
    let root = corpus::root();
    let sections = oracle(cfg, true, &[&root]);

    let all = &sections.last().expect("#all").counts;
    assert!(all.words > 500_000, "the corpus is smaller than expected");
    for extra in [&[][..], &["--threads", "1"]] {
        let what = format!("{cfg:?} corpus {extra:?}");
        check(&what, all, &count_local(cfg, extra, &[&root]));
    }

    let mut binary_files = 0;
    for dir in ["books", "demo"] {
        for file in files_under(&root.join(dir)) {
            let what = format!("{cfg:?} {}", file.display());
            check(
                &what,
                find(&sections, "file", &file),
                &count_local(cfg, &[], &[&file]),
            );
            binary_files += 1;
        }
    }
    assert!(binary_files >= 5, "books and demo have at least 5 files");

    let files = files_under(&root);
    let per_file = sections.iter().filter(|s| s.tag == "file").count();
    assert_eq!(files.len(), per_file, "the oracle saw every file");
    assert!(files.len() >= 800, "the corpus has all its papers");
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        let what = format!("{cfg:?} {} (in process)", file.display());
        check(
            &what,
            find(&sections, "file", file),
            &count_in_process(cfg, &data, 1),
        );
    }
}

#[test]
fn corpus_utf8() {
    corpus_against_oracle(UTF8);
}

#[test]
fn corpus_utf8_lowercase() {
    corpus_against_oracle(UTF8_LOWER);
}

#[test]
fn corpus_latin1() {
    corpus_against_oracle(LATIN1);
}

#[test]
fn corpus_latin1_lowercase() {
    corpus_against_oracle(LATIN1_LOWER);
}

// ---------------------------------------------------------------------------
// Adversarial inputs

/// `size` bytes or a little more of [`SNIPPETS`] picked at random.
fn mix(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        out.extend_from_slice(SNIPPETS[rng.below(SNIPPETS.len())]);
    }
    out
}

/// Small cases, each one file of its own: the hand-written ones
/// (`tests/offline/cases/<name>.txt`: scripts, marks, separators, invalid
/// UTF-8 of every kind), and some generated byte by byte.
fn small_cases() -> Vec<(String, Vec<u8>)> {
    let mut every_lead = Vec::new();
    for lead in 0xC0..=0xFFu8 {
        for next in [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC3] {
            every_lead.extend_from_slice(&[b'x', lead, next, b'x', b' ']);
            every_lead.extend_from_slice(&[b'x', lead, next, 0xA9, b'x', b' ']);
            every_lead.extend_from_slice(&[b'x', lead, next, 0xA9, 0x80, b'x', b' ']);
        }
    }
    let generated = [
        (
            "invalid-f5-ff",
            (0xF5..=0xFFu8)
                .flat_map(|b| [b'a', b])
                .chain(*b"a \xf4\x90\x80\x80 \xf8\x88\x80\x80\x80 \xfe\xff ")
                .collect(),
        ),
        (
            "every-byte-between-letters",
            (0..=255u8).flat_map(|b| [b'a', b, b'a', b' ']).collect(),
        ),
        (
            "every-byte-after-e-acute",
            (0..=255u8).flat_map(|b| [0xC3, 0xA9, b, b' ']).collect(),
        ),
        ("every-lead-byte-pair", every_lead),
    ];
    let written = files_under(&testkit::repo().join("tests/offline/cases"));
    assert!(written.len() >= 20, "the hand-written cases: {written:?}");
    written
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("a case's name").to_string_lossy();
            let bytes = std::fs::read(&p).expect("a readable case");
            (name.into_owned(), bytes)
        })
        .chain(generated.map(|(name, bytes)| (name.to_string(), bytes)))
        .collect()
}

/// Big generated cases: words longer than 1 MB, random bytes, a 6 MB mix
/// (larger than count-local's read buffer).
fn big_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Rng::new(0x5EED_F00D);
    let mut long_ascii = vec![b'a'; 1_200_000];
    long_ascii.extend_from_slice(b" tail");
    let mut long_unicode = "é".repeat(550_000).into_bytes();
    long_unicode.extend_from_slice("ΟΔΟΣ end".as_bytes());
    let mut long_non_word = vec![b'x'; 1_050_000];
    long_non_word.extend_from_slice(b"1 next");
    let random: Vec<u8> = (0..1_000_000).map(|_| rng.next_u64() as u8).collect();
    let mix = mix(&mut rng, 6_000_000);
    vec![
        ("long-ascii-word", long_ascii),
        ("long-unicode-word", long_unicode),
        ("long-non-word-token", long_non_word),
        ("random-bytes", random),
        ("random-mix", mix),
    ]
}

fn adversarial_against_oracle(cfg: Options) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    for (i, (name, bytes)) in small_cases()
        .into_iter()
        .chain(big_cases().into_iter().map(|(n, b)| (n.to_string(), b)))
        .enumerate()
    {
        let path = dir.path().join(format!("{i:02}-{name}"));
        std::fs::write(&path, bytes).expect("write case");
        paths.push(path);
    }
    let sections = oracle(cfg, true, &[dir.path()]);
    for path in &paths {
        let what = format!("{cfg:?} {}", path.display());
        let expected = find(&sections, "file", path);
        check(&what, expected, &count_local(cfg, &[], &[path]));
        let data = std::fs::read(path).expect("read case");
        for threads in [1, 3] {
            let what = format!("{what} in process, {threads} threads");
            check(&what, expected, &count_in_process(cfg, &data, threads));
        }
    }
    // All together: the batches of count-local span several files.
    let expected = &sections.last().expect("#all").counts;
    for extra in [&[][..], &["--threads", "1"]] {
        let what = format!("{cfg:?} all adversarial cases {extra:?}");
        check(&what, expected, &count_local(cfg, extra, &[dir.path()]));
    }
    if cfg.encoding == Encoding::Utf8 {
        assert!(expected.invalid > 500_000, "the cases have invalid UTF-8");
    }
}

#[test]
fn adversarial_utf8() {
    adversarial_against_oracle(UTF8);
}

#[test]
fn adversarial_utf8_lowercase() {
    adversarial_against_oracle(UTF8_LOWER);
}

#[test]
fn adversarial_latin1() {
    adversarial_against_oracle(LATIN1);
}

#[test]
fn adversarial_latin1_lowercase() {
    adversarial_against_oracle(LATIN1_LOWER);
}

/// Every small case in one stream, written to count-local's stdin one byte
/// at a time and in pieces of varying sizes (so its reads return those
/// pieces). count-local gathers reads into 1 MB batches before it cuts, so
/// the cuts at every byte boundary are exercised in process, by the
/// property tests of `Counter::feed` and `Splitter` (tests/offline/properties.rs);
/// the batch cuts by the multi-megabyte corpus and adversarial runs above.
#[test]
fn stdin_in_small_pieces() {
    let mut rng = Rng::new(42);
    let mut input = Vec::new();
    for (_, bytes) in small_cases() {
        if bytes.len() < 600 {
            input.extend_from_slice(&bytes);
            input.push(b'\n');
        }
    }
    input.extend(mix(&mut rng, 3000));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("stream");
    std::fs::write(&path, &input).expect("write stream");
    for cfg in ALL_OPTIONS {
        let expected = oracle(cfg, false, &[&path]).pop().expect("#all").counts;
        for pieces in [&[1][..], &[1, 2, 3, 5, 8, 13, 4, 7]] {
            let what = format!("{cfg:?} stdin in pieces {pieces:?}");
            check(&what, &expected, &count_local_stdin(cfg, &input, pieces));
        }
    }
}

/// The oracle itself: its invalid byte count and a few known answers, so a
/// broken oracle cannot make the differential tests pass vacuously.
#[test]
fn oracle_known_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("known");
    std::fs::write(
        &path,
        b"The the H2O x_1 na\xc3\xafve \xed\xa0\x80 \xe2\x82 ab\xff",
    )
    .expect("write");
    let utf8 = oracle(UTF8, false, &[&path]).pop().expect("#all").counts;
    assert_eq!(utf8.tsv, "The\t1\nab\t1\nnaïve\t1\nthe\t1\n".as_bytes());
    assert_eq!((utf8.words, utf8.distinct, utf8.invalid), (4, 4, 6));
    let lower = oracle(LATIN1_LOWER, false, &[&path])
        .pop()
        .expect("#all")
        .counts;
    assert_eq!(
        lower.tsv,
        "the\t2\nabÿ\t1\nnaã\t1\nve\t1\nâ\t1\ní\t1\n".as_bytes()
    );
    assert_eq!(lower.invalid, 0);
}
