//! The `onyx-id` command: parse, start logging, build the settings, run the command. The
//! commands live in `onyx_id::cli`.

use std::process::ExitCode;

use clap::Parser;
use onyx_id::cli::{self, Cli, output::fail};
use onyx_id::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.server.log_format);
    let settings = match cli.server.settings() {
        Ok(s) => s,
        Err(reason) => return fail(reason),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(cli::run(cli.command, settings))
}
