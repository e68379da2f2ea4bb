//! `wordstream completions SHELL`: shell completion scripts.
//!
//! The generated files are committed under `completions/`; a test fails when
//! they are stale (regenerate with `wordstream completions --write-dir completions`).

use anyhow::{Context, Result};
use clap_complete::{Generator, Shell};
use std::path::PathBuf;

/// Flags of `completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate for.
    #[arg(value_enum, required = true)]
    pub shell: Option<Shell>,
    /// Write the scripts for every shell into this directory instead.
    #[arg(long, value_name = "DIR", hide = true, exclusive = true)]
    pub write_dir: Option<PathBuf>,
}

/// Every shell we ship a script for.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "wordstream", &mut out);
    out
}

/// The file name the script for `shell` is committed under.
pub fn file_name(shell: Shell) -> String {
    shell.file_name("wordstream")
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    if let Some(dir) = args.write_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for shell in SHELLS {
            let path = dir.join(file_name(shell));
            std::fs::write(&path, script(shell))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(());
    }
    match args.shell {
        Some(shell) => {
            let text = String::from_utf8(script(shell)).context("completion script")?;
            crate::output::stdout(&text)
        }
        None => Ok(()),
    }
}
