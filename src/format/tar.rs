//! Tar archives: each regular member is a document, its format detected
//! like any input's (a member may be gzip, XML, another tar…), streamed
//! member after member with the `tar` crate (nothing is written to disk).
//!
//! An archive with a member that is not a regular file or a directory
//! (symbolic or hard link, device, FIFO) or whose path is absolute or
//! climbs out (`..`) fails as a whole, with the member named: publication
//! archives have no use for them, and such an archive is more likely an
//! attack or a mistake than a document. Directories are skipped. pax and
//! GNU long-name headers are read by the `tar` crate.

use super::{document, Budget, Hints, Sink};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Component;

/// Extracts every member of the tar archive `reader` into `sink`. `outer`
/// names the archive when it is itself a member (a prefix of member names).
pub(crate) fn members(
    reader: Box<dyn Read + '_>,
    hints: &Hints,
    budget: &Budget,
    outer: &str,
    chain: &mut Vec<&'static str>,
    sink: &mut dyn Sink,
) -> Result<()> {
    let _ = hints;
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| super::reason(chain, &e))
        .context("tar")?;
    for (i, entry) in entries.enumerate() {
        let index = i + 1;
        let entry = entry
            .map_err(|e| anyhow::anyhow!("tar: member {index}: {}", super::reason(chain, &e)))?;
        let shown =
            crate::output::escape(&String::from_utf8_lossy(&entry.path_bytes())).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            bail!(
                "tar: member {index} ({shown}) is a {}, not a regular file",
                describe_type(kind)
            );
        }
        let path = entry
            .path()
            .map_err(|e| anyhow::anyhow!("tar: member {index} ({shown}): bad path: {e}"))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!("tar: member {index} ({shown}): its path leaves the archive");
        }
        let name = if outer.is_empty() {
            path.to_string_lossy().into_owned()
        } else {
            format!("{outer}/{}", path.to_string_lossy())
        };
        let mut inner_chain = chain.clone();
        document(
            Box::new(entry),
            &Hints::named(name.clone()),
            budget,
            &name,
            &mut inner_chain,
            sink,
        )
        .with_context(|| format!("tar member {shown}"))?;
    }
    Ok(())
}

fn describe_type(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special member",
    }
}
