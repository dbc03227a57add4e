//! Helpers shared by several test modules that are too specific for helpers.rs.

pub mod browser;
pub mod cli;
pub mod console;
pub mod dpop;
pub mod logout;
pub mod partner_api;
pub mod processes;
pub mod receiver;
pub mod tls;
pub mod wait;
