//! The subcommands, one module each. Each exposes `Args` (its flags) and
//! `run(args)`.

pub mod completions;
pub mod consume;
pub mod count_local;
pub mod top;
pub mod upload;
pub mod worker;
