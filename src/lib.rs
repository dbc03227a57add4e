//! onyx-id: the OpenID Connect / OAuth 2.1 authorization server of the Onyx Partner Platform.
//!
//! `main.rs` is thin: the commands live in `cli`, everything else in these modules.

pub mod admin;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod console;
pub mod crypto;
pub mod edge;
pub mod error;
pub mod keys;
pub mod net;
pub mod oauth;
pub mod ops;
pub mod partner;
pub mod scopes;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;
mod wire;
