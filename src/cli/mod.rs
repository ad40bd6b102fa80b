//! The commands of the `strictly` binary, one file each, over the shared flags in [`args`].
//! Each file holds its flags (a `clap::Args` struct) and a `run` that returns the exit code.

#[cfg(feature = "harness")]
pub mod ab;
pub mod args;
#[cfg(feature = "store")]
pub mod audit;
#[cfg(feature = "harness")]
pub mod coverage;
#[cfg(feature = "harness")]
pub mod eval;
#[cfg(feature = "serve")]
pub mod feedback;
pub mod generate;
pub mod lint;
#[cfg(feature = "serve")]
pub mod phrases;
pub mod route;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "harness")]
pub mod tune;
