//! PDF: the text a reader sees, extracted in pure Rust in a helper process
//! with a memory cap and a time limit.
//!
//! A PDF is not a stream: its cross-reference table is at the end, so the
//! whole file is read into memory first, up to [`super::Config::pdf_max_bytes`]
//! (a larger one fails). The text is then extracted by a child process (this
//! same executable, started with [`HELPER_ENV`] set) under an address-space
//! limit (`RLIMIT_AS`), killed after [`super::Config::pdf_timeout`]: a PDF
//! whose content loops, recurses without end or exhausts memory fails that
//! one document, with a reason, and can neither hang nor crash the worker (a
//! stack overflow aborts a process; a thread could not be stopped).
//!
//! The extracted text is then made into the words a reader sees
//! ([`reader_text`]): ligature characters (ﬁ, ﬂ, ﬀ, ﬃ, ﬄ, ﬅ, ﬆ) become
//! their letters, and a word hyphenated across a line end (`exam-` at the
//! end of a line, `ple` starting the next in lower case) is joined
//! (`example`): a line-end hyphen before a lower-case letter is far more
//! often typesetting than a compound (whose parts the tokenizer would split
//! anyway). Encrypted PDFs, PDFs that fail to parse and PDFs without any
//! text (scanned images) fail with a reason.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the helper process: the executable extracts
/// the PDF on its stdin to its stdout and exits.
pub const HELPER_ENV: &str = "WORDSTREAM_PDF_HELPER";

/// The helper's address space: this many times the PDF's size plus
/// [`MEMORY_BASE`] (parsed objects and decompressed streams outgrow the
/// file).
const MEMORY_FACTOR: u64 = 8;
/// See [`MEMORY_FACTOR`].
const MEMORY_BASE: u64 = 512 << 20;

/// Reads a PDF (whole, within the cap) and extracts its text into `sink`.
pub(crate) fn extract(
    mut reader: impl Read,
    cfg: super::Config,
    sink: &mut dyn super::Sink,
) -> Result<()> {
    let mut pdf = Vec::new();
    (&mut reader)
        .take(cfg.pdf_max_bytes + 1)
        .read_to_end(&mut pdf)
        .map_err(|e| super::reason(&["pdf"], &e))?;
    if pdf.len() as u64 > cfg.pdf_max_bytes {
        bail!(
            "pdf: larger than the {} MiB cap (--pdf-max-mib)",
            cfg.pdf_max_bytes >> 20
        );
    }
    let text = in_helper(&pdf, cfg.pdf_timeout)?;
    let text = reader_text(&text);
    if !text.chars().any(char::is_alphabetic) {
        bail!("pdf: no text (a scanned or image-only PDF?)");
    }
    sink.text(text.as_bytes());
    Ok(())
}

/// Runs the helper process on `pdf`; its stdout is the raw text.
fn in_helper(pdf: &[u8], timeout: Duration) -> Result<String> {
    let exe = std::env::current_exe().context("pdf: cannot find this executable")?;
    let memory = (pdf.len() as u64)
        .saturating_mul(MEMORY_FACTOR)
        .saturating_add(MEMORY_BASE);
    let mut cmd = Command::new(exe);
    cmd.env(HELPER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit_memory(&mut cmd, memory);
    let mut child = cmd.spawn().context("pdf: cannot start the extractor")?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    std::thread::scope(|s| {
        // The PDF in, the text and the reason out, on their own threads (a
        // pipe is bounded); this thread keeps the time.
        s.spawn(move || {
            let _ = stdin.write_all(pdf);
        });
        let out = s.spawn(move || {
            let mut text = Vec::new();
            let _ = stdout.read_to_end(&mut text);
            text
        });
        let err = s.spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(4096).read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "pdf: extraction took longer than {} s (--pdf-timeout)",
                        timeout.as_secs()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => bail!("pdf: cannot wait for the extractor: {e}"),
            }
        };
        let text = out.join().unwrap_or_default();
        let reason = err.join().unwrap_or_default();
        if status.success() {
            return Ok(String::from_utf8_lossy(&text).into_owned());
        }
        let reason = reason.lines().next().unwrap_or("").trim().to_string();
        if !reason.is_empty() {
            bail!("pdf: {reason}");
        }
        use std::os::unix::process::ExitStatusExt;
        bail!(
            "pdf: the extractor crashed ({}; memory cap {} MiB)",
            status
                .signal()
                .map_or_else(|| status.to_string(), |s| format!("signal {s}")),
            memory >> 20
        )
    })
}

/// Caps the child's address space.
fn limit_memory(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The helper process's work: the PDF on stdin, its text on stdout; a
/// failure is one line on stderr and exit code 1.
pub fn helper_main() -> i32 {
    let mut pdf = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut pdf) {
        eprintln!("cannot read the PDF: {e}");
        return 1;
    }
    // A panic in the parser is a corrupt PDF: one line, no backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "corrupt (the parser gave up: {})",
            msg.lines().next().unwrap_or("")
        );
    }));
    match raw_text(&pdf) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The text layer of a PDF, as the parser gives it.
fn raw_text(pdf: &[u8]) -> std::result::Result<String, String> {
    pdf_extract::extract_text_from_mem(pdf).map_err(|e| describe_error(&e.to_string()))
}

/// A parser's error as a reason.
fn describe_error(e: &str) -> String {
    let lower = e.to_ascii_lowercase();
    if lower.contains("encrypt") || lower.contains("password") {
        return "encrypted (no password is tried)".into();
    }
    format!("corrupt ({e})")
}

/// Ligatures expanded and line-end hyphenation joined: the words a reader
/// sees (see the module's documentation).
pub fn reader_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '-' | '\u{ad}' | '\u{2010}'
                if out.chars().next_back().is_some_and(char::is_alphabetic) =>
            {
                let after = &rest[len..];
                let spaces = after.len() - after.trim_start_matches([' ', '\t', '\r']).len();
                if after[spaces..].starts_with('\n') {
                    let next = after[spaces + 1..].trim_start();
                    if next.chars().next().is_some_and(char::is_lowercase) {
                        rest = next;
                        continue;
                    }
                }
                if c != '\u{ad}' {
                    out.push(c);
                }
            }
            '\u{ad}' => {}
            c => out.push(c),
        }
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ligatures_and_line_end_hyphens_make_the_words_a_reader_sees() {
        assert_eq!(reader_text("the ﬁrst ﬂow"), "the first flow");
        assert_eq!(reader_text("an exam-\nple here"), "an example here");
        assert_eq!(reader_text("an exam-  \n   ple"), "an example");
        assert_eq!(reader_text("soft\u{ad}\nhyphen"), "softhyphen");
        assert_eq!(reader_text("mid\u{ad}word"), "midword");
        // Not a line-end hyphenation: kept.
        assert_eq!(reader_text("well-known"), "well-known");
        assert_eq!(reader_text("Smith-\nJones"), "Smith-\nJones");
        assert_eq!(reader_text("x -\nnext"), "x -\nnext");
        assert_eq!(reader_text("1-\nthe"), "1-\nthe");
    }
}
