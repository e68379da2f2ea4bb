//! The test corpus and generated inputs (snippets of adversarial text,
//! pseudo-random bytes).
//!
//! The corpus is `tests/corpus/` of the repository (demo files, two books,
//! 832 papers; see its `SOURCES.md`), or the folder `WORDSTREAM_CORPUS`
//! names, with the same layout (`demo/`, `books/`, `papers/`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The corpus folder: `$WORDSTREAM_CORPUS`, else `<repo>/tests/corpus`.
pub fn root() -> PathBuf {
    let dir = match std::env::var_os("WORDSTREAM_CORPUS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::repo().join("tests/corpus"),
    };
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set WORDSTREAM_CORPUS to its folder)",
        dir.display()
    );
    dir
}

/// A file of the corpus, e.g. `demo/A1.headed.txt`.
pub fn file(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.is_file(), "{} is missing from the corpus", p.display());
    p
}

/// The bytes of a corpus file.
pub fn read(rel: &str) -> Vec<u8> {
    let p = file(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every file below `path` (a file is itself), sorted by path.
pub fn files_under(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(path)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap_or_else(|e| panic!("walking {}: {e}", path.display())))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    out.sort();
    out
}

/// The files of corpus folders `dirs` (e.g. `["books", "papers"]`) as
/// (key, path), the key being the path relative to the corpus
/// (`papers/arxiv_0704.0001.txt`), sorted by key.
pub fn objects(dirs: &[&str]) -> Vec<(String, PathBuf)> {
    let root = root();
    let mut out: Vec<(String, PathBuf)> = dirs
        .iter()
        .flat_map(|d| files_under(&root.join(d)))
        .map(|p| {
            let key = p
                .strip_prefix(&root)
                .expect("below the corpus")
                .to_string_lossy()
                .into_owned();
            (key, p)
        })
        .collect();
    out.sort();
    out
}

/// `n` papers of the corpus from the `skip`-th (by key), as (key, path).
pub fn papers(skip: usize, n: usize) -> Vec<(String, PathBuf)> {
    let all = objects(&["papers"]);
    assert!(
        all.len() >= skip + n,
        "the corpus has {} papers, {} wanted",
        all.len(),
        skip + n
    );
    all[skip..skip + n].to_vec()
}

/// `data` in a file `name` of a fresh temporary folder, removed when the
/// returned guard is dropped.
pub fn temp_file(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let path = tmp.path().join(name);
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    (tmp, path)
}

/// A small deterministic PRNG (xorshift64*), so generated inputs and random
/// moments reproduce from their seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seeded from the clock; prints the seed with `what`.
    pub fn from_clock(what: &str) -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        eprintln!("{what}: random seed {seed}");
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A duration between `lo` and `hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> std::time::Duration {
        std::time::Duration::from_millis(lo + self.next_u64() % (hi - lo))
    }
}

/// Deterministic pseudo-random bytes, for payloads to compare.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Snippets that generated inputs are assembled from: words in many
/// scripts, word characters that are not letters, separators, marks, and
/// invalid UTF-8.
pub const SNIPPETS: &[&[u8]] = &[
    b"the",
    b"The",
    b"THE",
    b" ",
    b" ",
    b"\n",
    b"\r\n",
    b"\t",
    b".",
    b"-",
    b"_",
    b"0",
    b"7",
    b"\0",
    "é".as_bytes(),
    "É".as_bytes(),
    "e\u{301}".as_bytes(),
    "\u{301}".as_bytes(),
    "ΟΔΟΣ".as_bytes(),
    "Σ".as_bytes(),
    "ς".as_bytes(),
    "ʹ".as_bytes(),
    "Привет".as_bytes(),
    "中文".as_bytes(),
    "々".as_bytes(),
    "हिन्दी".as_bytes(),
    "İ".as_bytes(),
    "ı".as_bytes(),
    "ǅ".as_bytes(),
    "ß".as_bytes(),
    "ﬁ".as_bytes(),
    "K".as_bytes(),
    "²".as_bytes(),
    "Ⅻ".as_bytes(),
    "٣".as_bytes(),
    "𐐀".as_bytes(),
    "𝐀".as_bytes(),
    "😀".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{200d}".as_bytes(),
    b"\x80",
    b"\xbf",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf5",
    b"\xff",
];

/// `i` as letters only, after `latencyprobe`: a word of its own for each
/// object of a latency benchmark (its first total in the changelog says
/// when that object was counted).
pub fn probe_word(i: usize) -> String {
    let mut s = String::from("latencyprobe");
    let mut n = i;
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s
}
