//! The `wordstream` binary: load `.env`, parse the command line, set up
//! logging, run the subcommand, and turn an error into one line on stderr
//! and exit code 1.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use wordstream::cli::{Cli, Command};
use wordstream::{cmd, config};

fn main() {
    // A PDF extraction helper process (see wordstream::format::pdf).
    if std::env::var_os(wordstream::format::pdf::HELPER_ENV).is_some() {
        std::process::exit(wordstream::format::pdf::helper_main());
    }
    // Before parsing, so that clap's env fallbacks see `.env` (flag > env > .env).
    let env_file = std::env::var_os("WORDSTREAM_ENV_FILE").map(PathBuf::from);
    let dotenv = config::load_dotenv(env_file.as_deref());
    let cli = Cli::parse();
    wordstream::logging::init(&cli.loglevel, cli.log_format);
    let result = dotenv.and_then(|warnings| {
        for w in warnings {
            tracing::warn!("{w}");
        }
        run(cli.command)
    });
    if let Err(err) = result {
        // A closed stderr loses the line, not the exit code.
        let _ = writeln!(std::io::stderr(), "wordstream: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CountLocal(args) => cmd::count_local::run(args),
        Command::Upload(args) => cmd::upload::run(args),
        Command::Consume(args) => cmd::consume::run(args),
        Command::Worker(args) => cmd::worker::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Top(args) => cmd::top::run(args),
    }
}
