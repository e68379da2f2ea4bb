//! Names unique across tests, processes and runs, valid everywhere a test
//! needs one: Kafka topics, consumer groups, transactional ids, S3 buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix-<pid>-<n>-<time>`, lowercase `[a-z0-9-]`, at most 63 chars.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    let mut p: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    p = p.trim_matches('-').to_string();
    if p.is_empty() {
        p = "t".to_string();
    }
    let suffix = format!(
        "-{}-{}-{}",
        std::process::id(),
        n,
        base36(nanos % 36u128.pow(8))
    );
    p.truncate(63 - suffix.len());
    let p = p.trim_end_matches('-');
    format!("{p}{suffix}")
}

fn base36(mut v: u128) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn unique_names_are_s3_safe() {
        let a = unique_name("Some_Prefix.With/Odd Chars");
        let b = unique_name("Some_Prefix.With/Odd Chars");
        assert_ne!(a, b);
        for n in [&a, &b, &unique_name(&"x".repeat(200))] {
            assert!(n.len() >= 3 && n.len() <= 63, "{n}");
            assert!(
                n.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
                "{n}"
            );
            assert!(
                n.as_bytes()[0].is_ascii_alphanumeric()
                    && n.as_bytes()[n.len() - 1].is_ascii_alphanumeric(),
                "{n}"
            );
        }
    }
}
