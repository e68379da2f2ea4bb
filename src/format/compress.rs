//! Decompression: gzip (flate2, zlib-rs backend), zstd (the reference C
//! library through the `zstd` crate) and bzip2 (the `bzip2` crate's pure
//! Rust port), streamed in constant memory.
//!
//! Every decoder's output is metered against the expansion limit: the
//! decompressed bytes of a document may not exceed
//! [`super::Config::max_expansion`] times the input bytes read so far plus
//! [`super::EXPANSION_SLACK`]. Past it, the read fails with a reason naming
//! the limit: a decompression bomb costs at most that much work.
//!
//! A truncated stream fails (its end is missing), as does a corrupt one.
//! Concatenated gzip members and zstd frames are read as one stream, as
//! `gzip -d` and `zstd -d` do.

use super::{describe, described, Budget, Kind};
use std::io::{BufReader, Read};

/// The decoder of `kind` over `reader`, metered by `budget`.
pub(crate) fn decoder<'a>(
    kind: Kind,
    reader: Box<dyn Read + 'a>,
    budget: Budget,
) -> anyhow::Result<Box<dyn Read + 'a>> {
    let inner: Box<dyn Read + 'a> = match kind {
        Kind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Kind::Zstd => Box::new(
            zstd::stream::read::Decoder::new(reader)
                .map_err(|e| anyhow::anyhow!("zstd: cannot start decoding: {e}"))?,
        ),
        Kind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(reader))),
        _ => unreachable!("{} is not a compression", kind.name()),
    };
    Ok(Box::new(Metered {
        inner,
        name: kind.name(),
        out: 0,
        budget,
    }))
}

/// A decoder's output, described on error and held to the expansion limit.
struct Metered<'a> {
    inner: Box<dyn Read + 'a>,
    name: &'static str,
    out: u64,
    budget: Budget,
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(describe(
                    &format!(
                        "{}: truncated (the stream ends after {} bytes of output)",
                        self.name, self.out
                    ),
                    e,
                ))
            }
            Err(e) => return Err(describe(self.name, e)),
        };
        self.out += n as u64;
        let allowed = self.budget.allowed();
        if self.out > allowed {
            let raw = self.budget.raw.load(std::sync::atomic::Ordering::Relaxed);
            return Err(described(format!(
                "{}: over the expansion limit: more than {} bytes out of {} compressed bytes (limit {}x + {} bytes; --max-expansion)",
                self.name,
                allowed,
                raw,
                self.budget.max_expansion,
                super::EXPANSION_SLACK
            )));
        }
        Ok(n)
    }
}
