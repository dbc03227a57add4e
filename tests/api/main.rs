//! onyx-id's integration tests: one binary. Each test starts the real server on a random port
//! with a fresh database, and talks HTTP to it like a partner app and a browser would.

mod helpers;

mod browser;
mod cli;
mod cli_help;
mod consent;
mod framework_refusals;
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
