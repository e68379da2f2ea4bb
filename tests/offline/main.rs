//! The tests that need no stack: one test binary, a module per area.
//!
//! - `differential`: `count-local` against the Python oracle on the corpus
//!   and generated adversarial inputs;
//! - `properties`: property tests of the core (streaming, parallel, tokenizer);
//! - `formats`: compressed, archived, XML and HTML inputs (issue 16), bad
//!   inputs (a gzip bomb, path tricks in tars);
//! - `completions`: the committed shell completions are current;
//! - `deploy`: the deployment template lints clean and grants no wildcard;
//! - `cli_hardening`: issue 18 without a stack (`.env` errors, named streams,
//!   bounded flags, escaped keys, URL-encoded listings, a silent S3 endpoint).
//!
//! Run: `cargo test --test offline`.

mod cli_hardening;
mod completions;
mod deploy;
mod differential;
mod formats;
mod properties;
