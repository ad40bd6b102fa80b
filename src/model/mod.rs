//! The model: where it comes from ([`resolve`]) and, with the `local`
//! feature, how it is loaded and run.

pub mod resolve;

#[cfg(feature = "local")]
mod linear;
#[cfg(feature = "local")]
mod llama;
#[cfg(feature = "local")]
pub mod local;
