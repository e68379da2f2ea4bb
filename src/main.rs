//! The `wordstream` binary: parse the command line, set up logging, run the
//! subcommand, and turn an error into one line on stderr and exit code 1.

use clap::Parser;
use wordstream::cli::{Cli, Command};
use wordstream::cmd;

fn main() {
    let cli = Cli::parse();
    wordstream::logging::init(&cli.loglevel);
    let result = match cli.command {
        Command::CountLocal(args) => cmd::count_local::run(args),
        Command::Completions(args) => cmd::completions::run(args),
    };
    if let Err(err) = result {
        eprintln!("wordstream: error: {err:#}");
        std::process::exit(1);
    }
}
