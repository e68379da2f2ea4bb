//! Planning an upload: which files, under which keys, in how many parts.
//! Pure functions over the local file system; nothing here talks to S3.

use crate::output;
use crate::s3;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// S3's smallest part (all but the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3's largest part count.
pub const MAX_PARTS: u64 = 10_000;

/// Parses `123`, `64KiB`, `16MiB`, `1GiB` (also `K`, `KB`, `M`, `MB`, … all
/// binary, as the aws cli reads them).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 8MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}': unknown unit (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Parses a part size: a size between S3's 5 MiB and 5 GiB.
pub(super) fn parse_part_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_PART {
        return Err(format!("{s} is below S3's minimum part size of 5MiB"));
    }
    if n > 5 << 30 {
        return Err(format!("{s} is above S3's maximum part size of 5GiB"));
    }
    Ok(n)
}

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The local file.
    pub path: PathBuf,
    /// Its object key.
    pub key: String,
    /// Its size when listed.
    pub size: u64,
}

/// `prefix` as a folder: empty, or ending in `/`. A prefix that starts
/// with `/` or holds an empty (`//`), `.` or `..` segment is refused: S3
/// keys are not paths, and a server storing objects as files (versitygw)
/// would map such keys onto other keys.
pub fn folder(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        bail!(
            "--prefix {}: a key prefix may not start with / or hold //, . or .. segments \
             (e.g. --prefix papers/2026/)",
            output::escape(prefix)
        );
    }
    Ok(format!("{body}/"))
}

fn utf8_name(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| {
        anyhow!(
            "{}: file name is not UTF-8",
            output::escape(&p.display().to_string())
        )
    })
}

/// Expands the command-line paths into files and their keys: a file's key
/// is its name, a directory's files (with `recursive`) are keyed by their
/// path relative to it, `/`-separated, in sorted order.
pub fn expand(paths: &[PathBuf], recursive: bool, prefix: &str) -> Result<Vec<Item>> {
    let prefix = folder(prefix)?;
    let mut items = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!(
                    "cannot upload {}: no such file or directory",
                    path.display()
                )
            }
            _ => anyhow!("cannot upload {}: {e}", path.display()),
        })?;
        if meta.is_file() {
            let name = path
                .file_name()
                .ok_or_else(|| anyhow!("cannot upload {}: no file name", path.display()))?;
            let name = utf8_name(Path::new(name))?;
            items.push(Item {
                path: path.clone(),
                key: format!("{prefix}{name}"),
                size: meta.len(),
            });
        } else if meta.is_dir() {
            if !recursive {
                bail!(
                    "{} is a directory (use --recursive to upload its files)",
                    path.display()
                );
            }
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| {
                    let at = e.path().unwrap_or(path).display().to_string();
                    match e.into_io_error() {
                        Some(io) => anyhow!("cannot upload {at}: {io}"),
                        None => anyhow!("cannot upload {at}: symlink loop"),
                    }
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(path)
                    .expect("walkdir yields paths under its root");
                let mut key = prefix.clone();
                for (i, c) in rel.components().enumerate() {
                    if i > 0 {
                        key.push('/');
                    }
                    key.push_str(utf8_name(Path::new(c.as_os_str()))?);
                }
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot upload {}", entry.path().display()))?
                    .len();
                items.push(Item {
                    path: entry.into_path(),
                    key,
                    size,
                });
            }
        } else {
            bail!("cannot upload {}: not a regular file", path.display());
        }
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for it in &items {
        if let Some(other) = seen.insert(&it.key, &it.path) {
            bail!(
                "{} and {} would both upload to key {}",
                other.display(),
                it.path.display(),
                it.key
            );
        }
    }
    Ok(items)
}

/// How one file goes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// One PutObject.
    Single,
    /// Multipart: part size and count.
    Multipart { part_size: u64, parts: u64 },
}

/// The plan for a file of `size` bytes: multipart above `threshold`, with
/// parts of `part_size` grown (to whole MiB) when S3's 10,000-part limit
/// needs it.
pub fn plan(size: u64, threshold: u64, part_size: u64) -> Plan {
    if size <= threshold {
        return Plan::Single;
    }
    let mut part = part_size.max(MIN_PART);
    if size.div_ceil(part) > MAX_PARTS {
        part = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    }
    Plan::Multipart {
        part_size: part,
        parts: size.div_ceil(part).max(1),
    }
}

/// What `--dry-run` prints: one line per file (keys and paths escaped),
/// then the total.
pub fn dry_run(items: &[Item], bucket: &str, threshold: u64, part_size: u64) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let mut total = 0;
    for it in items {
        total += it.size;
        let how = match plan(it.size, threshold, part_size) {
            Plan::Single => "1 PUT".to_string(),
            Plan::Multipart { parts, .. } => format!("multipart, {parts} parts"),
        };
        let _ = writeln!(
            text,
            "would upload {} -> {} ({} bytes, {how})",
            output::escape(&it.path.display().to_string()),
            output::escape(&s3::url(bucket, &it.key)),
            it.size
        );
    }
    let _ = writeln!(
        text,
        "dry run: {} files, {total} bytes; nothing uploaded",
        items.len()
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_part_size("4MiB").is_err());
        assert_eq!(parse_part_size("5MiB"), Ok(5 << 20));
    }

    #[test]
    fn plans() {
        let t = 16 << 20;
        assert_eq!(plan(0, t, 8 << 20), Plan::Single);
        assert_eq!(plan(t, t, 8 << 20), Plan::Single);
        assert_eq!(
            plan(t + 1, t, 8 << 20),
            Plan::Multipart {
                part_size: 8 << 20,
                parts: 3
            }
        );
        // 100 GiB at 8 MiB would need 12,800 parts: the part grows.
        match plan(100 << 30, t, 8 << 20) {
            Plan::Multipart { part_size, parts } => {
                assert!(parts <= MAX_PARTS);
                assert_eq!(part_size % (1 << 20), 0);
                assert!(part_size * parts >= 100 << 30);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("b.txt"), "b").unwrap();
        std::fs::write(d.join("sub/a.txt"), "aa").unwrap();
        std::fs::write(d.join("sub/deeper/c.txt"), "ccc").unwrap();
        let items = expand(&[d.to_path_buf()], true, "in").unwrap();
        let keys: Vec<_> = items.iter().map(|i| (i.key.as_str(), i.size)).collect();
        assert_eq!(
            keys,
            [
                ("in/b.txt", 1),
                ("in/sub/a.txt", 2),
                ("in/sub/deeper/c.txt", 3)
            ]
        );
        let one = expand(&[d.join("sub/a.txt")], false, "").unwrap();
        assert_eq!(one[0].key, "a.txt");
        let e = expand(&[d.to_path_buf()], false, "").unwrap_err();
        assert!(e
            .to_string()
            .ends_with("is a directory (use --recursive to upload its files)"));
        let e = expand(&[d.join("nope")], false, "").unwrap_err();
        assert!(
            e.to_string().ends_with("nope: no such file or directory"),
            "{e}"
        );
        for bad in ["/abs", "//", "a//b", "./x", "a/../b", "a/."] {
            let e = expand(&[d.join("b.txt")], false, bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "--prefix {bad}: a key prefix may not start with / or hold //, . or .. \
                     segments (e.g. --prefix papers/2026/)"
                )
            );
        }
        assert_eq!(
            expand(&[d.join("b.txt")], false, "p/q/").unwrap()[0].key,
            "p/q/b.txt"
        );
        let e = expand(&[d.join("b.txt"), d.join("b.txt")], false, "").unwrap_err();
        assert!(
            e.to_string().contains("would both upload to key b.txt"),
            "{e}"
        );
    }
}
