//! What the benchmarks (`examples/bench_*`) share: their command line
//! (`--flag` and `--name VALUE`) and the line they start with.

use std::str::FromStr;

/// A benchmark's command-line arguments.
pub struct Args(Vec<String>);

impl Args {
    /// The arguments of this process (without the program's name).
    pub fn from_env() -> Args {
        Args(std::env::args().skip(1).collect())
    }

    /// Whether `name` is among them.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// The argument after `name`, parsed, or `default` without `name`;
    /// panics with "`name` takes …" when it does not parse.
    pub fn value<T: FromStr>(&self, name: &str, default: T) -> T {
        let Some(at) = self.0.iter().position(|a| a == name) else {
            return default;
        };
        self.0
            .get(at + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} takes a {}", std::any::type_name::<T>()))
    }
}

/// Prints the benchmark's first line: what it measures, the binary under
/// test, the cores of the machine, and `more`.
pub fn banner(what: &str, more: &str) {
    println!(
        "wordstream {what} benchmark: {} on {} cores{more}",
        crate::cli::bin().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

/// `; worker logs in <folder>`, for [`banner`].
pub fn worker_logs() -> String {
    format!(
        "; worker logs in {}",
        crate::scratch_dir().join("worker-logs").display()
    )
}
