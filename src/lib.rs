//! The composition root of event-pipeline: reads the configuration, picks the
//! adapters, wires them to the domain and serves HTTP. This is the only crate
//! that names every concrete type.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod app;
pub mod cli;
pub mod config;
mod connect;
mod delivery;
pub mod event_types;
mod pipeline;
mod start_error;
pub mod telemetry;

pub use app::{start, start_with_store, start_with_stores, Running, StartError};
pub use config::Config;
