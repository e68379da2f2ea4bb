//! Expected word counts: from the library's core in process, or from
//! `wordstream count-local`, and how two count maps differ.

use std::collections::HashMap;
use std::path::PathBuf;
use wordstream::count::{Counter, Options};
use wordstream::tokenize::Encoding;

/// Word → count.
pub type Counts = HashMap<String, i64>;

/// The four ways to count: UTF-8 or Latin-1, case kept or lowercased.
pub const ALL_OPTIONS: [Options; 4] = [
    Options {
        encoding: Encoding::Utf8,
        lowercase: false,
    },
    Options {
        encoding: Encoding::Utf8,
        lowercase: true,
    },
    Options {
        encoding: Encoding::Latin1,
        lowercase: false,
    },
    Options {
        encoding: Encoding::Latin1,
        lowercase: true,
    },
];

/// The flags of `count-local` (and of `tests/oracle.py`) for `o`.
pub fn option_flags(o: Options) -> Vec<&'static str> {
    let mut v = vec![
        "--encoding",
        match o.encoding {
            Encoding::Utf8 => "utf8",
            Encoding::Latin1 => "latin1",
        },
    ];
    if o.lowercase {
        v.push("--lowercase");
    }
    v
}

/// Counts `data` with the library's core (default options: UTF-8, case kept).
pub fn count_bytes(data: &[u8]) -> Counts {
    let mut c = Counter::new(Options::default());
    for chunk in data.chunks(64 << 10) {
        c.feed(chunk);
    }
    c.finish()
        .iter()
        .map(|(w, n)| (w.to_string(), n as i64))
        .collect()
}

/// Adds `b` × `times` into `a`.
pub fn add_counts(a: &mut Counts, b: &Counts, times: i64) {
    for (w, n) in b {
        *a.entry(w.clone()).or_default() += n * times;
    }
}

/// `b` × `times`.
pub fn times(b: &Counts, times: i64) -> Counts {
    let mut out = Counts::new();
    add_counts(&mut out, b, times);
    out
}

/// `wordstream count-local --output tsv PATHS…`, parsed.
pub fn count_local(paths: &[PathBuf]) -> Counts {
    if paths.is_empty() {
        return Counts::new(); // (count-local would read stdin)
    }
    let out = crate::cli::offline_cmd(&["count-local", "--output", "tsv"])
        .args(paths)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running count-local");
    assert!(out.status.success(), "count-local failed: {:?}", out.status);
    parse_tsv(&out.stdout)
}

/// `wordstream count-local --output tsv s3://BUCKET` against the stack:
/// the counts of what the bucket holds now.
pub fn count_local_s3(bucket: &str) -> Counts {
    let url = format!("s3://{bucket}");
    let out = crate::cli::cmd(
        crate::stack::stack(),
        &["count-local", "--output", "tsv", &url],
    )
    .stderr(std::process::Stdio::inherit())
    .output()
    .expect("running count-local");
    assert!(
        out.status.success(),
        "count-local {url} failed: {:?}",
        out.status
    );
    parse_tsv(&out.stdout)
}

/// `word<TAB>count` lines.
fn parse_tsv(stdout: &[u8]) -> Counts {
    let text = std::str::from_utf8(stdout).expect("count-local prints UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (w, n) = l
                .rsplit_once('\t')
                .unwrap_or_else(|| panic!("bad count-local line {l:?}"));
            (w.to_string(), n.parse().expect("count"))
        })
        .collect()
}

/// A human summary of how two count maps differ (empty if equal).
pub fn diff_counts(got: &Counts, want: &Counts) -> String {
    let mut keys: Vec<&String> = got.keys().chain(want.keys()).collect();
    keys.sort();
    keys.dedup();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("  {k:?}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    if differ.is_empty() {
        return String::new();
    }
    format!(
        "{} words differ ({} got, {} wanted; sum got {}, want {}):\n{}",
        differ.len(),
        got.len(),
        want.len(),
        got.values().sum::<i64>(),
        want.values().sum::<i64>(),
        differ[..differ.len().min(15)].join("\n")
    )
}
