//! onyx-id's integration tests: one binary. Each test starts the real server on a random port
//! with a fresh database, and talks HTTP to it like a partner app and a browser would.

#[macro_use]
mod helpers;

mod browser;
mod cli;
mod consent;
mod garbage;
mod hardening;
mod hardening_partner;
mod internal_addresses;
mod lifecycle;
mod login_limits;
mod partner;
mod pending_requests;
mod refusals;
mod sign_in;
mod transport;
