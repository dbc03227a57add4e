//! onyx-id's integration tests: one binary. Each test starts the real server on a random port
//! with a fresh database, and talks HTTP to it like a partner app and a browser would.
//!
//! A test that holds on both backends is an `async fn name(backend: Backend)` registered with
//! `on_each_backend!` (helpers.rs): it runs as `name::sqlite` and `name::postgres`, so a failure
//! names its backend and one backend's failure never hides the other's. The PostgreSQL case
//! needs `ONYX_TEST_POSTGRES_URL`; without it the case says it is skipped, and under `CI` it
//! fails. `on_each_backend!(plain: …)` also runs it as `name::sqlite_plain` and
//! `name::postgres_plain`: with `DatabaseUrl::plain_sqlx` set, every query goes through sqlx (no
//! direct SQLite reads, no inline token writer, no pipelined PostgreSQL connections), so the
//! path the fast ones fall back to is tested too (the lifecycle and consent tests do this).

#[macro_use]
mod helpers;

mod account_pages;
mod backchannel;
mod browser;
mod cli;
mod cli_definition;
mod cli_help;
mod consent;
mod console_apps;
mod console_garbage;
mod console_journey;
mod console_operate;
mod console_review;
mod console_team;
mod db_keys;
mod dpop;
mod draft_domain;
mod fapi2;
mod framework_refusals;
mod garbage;
mod hardening;
mod hardening_partner;
mod hot_cache;
mod instances;
mod internal_addresses;
mod json_bodies;
mod jwks_uri;
mod lifecycle;
mod login_limits;
mod logout;
mod openapi;
mod operations;
mod par;
mod partner;
mod pending_requests;
mod refusals;
mod session_endings;
mod sign_in;
mod storage_paths;
mod support;
mod transport;
mod webhook_crash;
mod webhook_events;
mod webhook_subscriptions;
mod webhook_tls;
mod webhooks;
