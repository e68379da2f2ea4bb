//! One byte range of a stream, counted so that ranges cut anywhere add up
//! exactly to the whole (ranged reads of big objects). No I/O.

use super::{Counter, Options, WordCounts};
use crate::tokenize::{self, Encoding};

/// Counts one byte range `[start, end)` of a stream, so that ranges cut
/// anywhere add up exactly to the whole stream (ranged reads of a big
/// object; docs/design.md §9). A word belongs to the range it starts in:
/// the range counts from its resume point ([`tokenize::resume_at`] at
/// `start`) to the next range's (at `end`), reading on past `end` to finish
/// its last word and skipping a word that started before `start`. Feed it
/// the stream from [`RangeCounter::first_byte`] on until [`RangeCounter::push`]
/// says it is done (or the stream ends). Pure: no I/O.
pub struct RangeCounter {
    enc: Encoding,
    start: u64,
    end: u64,
    /// Absolute offset of the next byte pushed.
    pos: u64,
    /// While the resume point after `start` is not found: the bytes from
    /// [`RangeCounter::first_byte`] on.
    head: Option<Vec<u8>>,
    /// The last bytes pushed (at most [`tokenize::RESUME_BACK`]), then,
    /// past `end`, the window in which the end's resume point is looked for.
    recent: Vec<u8>,
    counter: Counter,
    done: bool,
}

impl RangeCounter {
    /// A counter of `[start, end)` (`start < end`).
    pub fn new(opts: Options, start: u64, end: u64) -> Self {
        RangeCounter {
            enc: opts.encoding,
            start,
            end,
            pos: first_byte(start),
            head: Some(Vec::new()),
            recent: Vec::new(),
            counter: Counter::new(opts),
            done: false,
        }
    }

    /// The first byte of the stream it needs.
    pub fn first_byte(&self) -> u64 {
        first_byte(self.start)
    }

    /// The offset of the next byte it expects.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether it needs no more bytes.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the next bytes of the stream; `true` once it needs no more.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.done {
            return true;
        }
        let from = self.first_byte();
        let Some(head) = self.head.as_mut() else {
            return self.body(chunk);
        };
        head.extend_from_slice(chunk);
        let back = (self.start - from) as usize;
        let Some(q) = tokenize::resume_at(head, back, self.enc) else {
            self.pos += chunk.len() as u64;
            return false;
        };
        let head = self.head.take().expect("in the head");
        let resume = from + q as u64;
        if resume >= self.end {
            // A word runs over the whole range: it belongs to an earlier one,
            // and the next range resumes where this one would.
            self.done = true;
            return true;
        }
        // The bytes before the resume point (for the end's look-back).
        let keep = q.min(tokenize::RESUME_BACK);
        self.recent = head[q - keep..q].to_vec();
        self.pos = resume;
        self.body(&head[q..])
    }

    /// Bytes at `self.pos` on, the resume point after `start` passed.
    fn body(&mut self, chunk: &[u8]) -> bool {
        let back = tokenize::RESUME_BACK;
        if self.pos < self.end {
            let n = chunk.len().min((self.end - self.pos) as usize);
            self.counter.feed(&chunk[..n]);
            self.pos += n as u64;
            self.recent
                .extend_from_slice(&chunk[n.saturating_sub(back)..n]);
            let extra = self.recent.len().saturating_sub(back);
            self.recent.drain(..extra);
            if self.pos < self.end {
                return false;
            }
            return self.past_end(&chunk[n..]);
        }
        self.past_end(chunk)
    }

    /// Bytes past `end`: counted up to the end's resume point.
    fn past_end(&mut self, chunk: &[u8]) -> bool {
        // `recent` holds the bytes from `end - back` (or from the last
        // window's tail) up to `self.pos`.
        let back = self.recent.len();
        self.recent.extend_from_slice(chunk);
        let back_for = if self.end == 0 { 0 } else { back.max(1) };
        match tokenize::resume_at(&self.recent, back_for, self.enc) {
            Some(q) => {
                self.counter.feed(&self.recent[back..q.max(back)]);
                self.pos += (q.max(back) - back) as u64;
                self.done = true;
            }
            None => {
                self.counter.feed(&self.recent[back..]);
                self.pos += chunk.len() as u64;
                let extra = self.recent.len().saturating_sub(tokenize::RESUME_BACK);
                self.recent.drain(..extra);
            }
        }
        self.done
    }

    /// The counts of the range (at its end, or the stream's).
    pub fn finish(self) -> WordCounts {
        self.counter.finish()
    }
}

/// The first byte a range starting at `start` needs: the look-back that
/// decides where its first word starts.
fn first_byte(start: u64) -> u64 {
    start - start.min(tokenize::RESUME_BACK as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::count_bytes;

    #[test]
    fn range_counters_add_up_to_the_whole() {
        let mut text = "Zoë naïve  ünïcödé 日本語 x1 a\u{1F600}b ΣΑΣ\n€uro "
            .repeat(3)
            .into_bytes();
        text.extend_from_slice(b"bad\xff\xc3 half \xe2\x82 \xf0\x9f\x98 t\xc3\xa9t end");
        text.extend_from_slice(&[b'w'; 300]);
        text.extend_from_slice(b" last");
        let opts = Options::default();
        let whole = count_bytes(&text, opts, 1);
        let n = text.len() as u64;
        for size in [5u64, 7, 13, 64, 100, 301] {
            for piece in [1usize, 3, 4096] {
                let mut total = WordCounts::new();
                let mut a = 0;
                while a < n {
                    let b = (a + size).min(n);
                    let mut r = RangeCounter::new(opts, a, b);
                    let mut at = r.first_byte() as usize;
                    while at < text.len() && !r.is_done() {
                        let to = (at + piece).min(text.len());
                        r.push(&text[at..to]);
                        at = to;
                    }
                    total.merge(r.finish());
                    a = b;
                }
                assert_eq!(
                    total, whole,
                    "ranges of {size}, pushed {piece} bytes at a time"
                );
                assert_eq!(total.invalid_bytes, whole.invalid_bytes);
            }
        }
    }
}
