//! The `onyx-id` command line: `serve`, and the operator commands, one file per command group,
//! each with its clap definition and its dispatch. The commands call the same service functions
//! as the APIs (`crate::admin`, `crate::partner`); `output` prints their one JSON object.

pub mod apps;
pub mod audit;
pub mod grants;
pub mod keys;
pub mod operators;
pub mod output;
pub mod partners;
pub mod resource_servers;
pub mod reviews;
pub mod serve;
pub mod users;
pub mod webhooks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::{ServerArgs, Settings};

/// onyx-id: the OpenID Connect / OAuth 2.1 authorization server of the Onyx Partner Platform.
#[derive(Parser)]
#[command(name = "onyx-id", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Manage partner apps (OAuth clients).
    Apps {
        #[command(subcommand)]
        command: Box<apps::AppsCommand>,
    },
    /// Manage resource servers (APIs that introspect tokens).
    ResourceServers {
        #[command(subcommand)]
        command: resource_servers::ResourceServersCommand,
    },
    /// Read and revoke users' consent to apps.
    Grants {
        #[command(subcommand)]
        command: grants::GrantsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Manage partners (organisations in the partner program).
    Partners {
        #[command(subcommand)]
        command: partners::PartnersCommand,
    },
    /// Manage operator accounts (Onyx staff who review apps).
    Operators {
        #[command(subcommand)]
        command: operators::OperatorsCommand,
    },
    /// Review partner apps.
    Reviews {
        #[command(subcommand)]
        command: reviews::ReviewsCommand,
    },
    /// Read the partner program's audit log (newest first).
    Audit(audit::AuditArgs),
}

/// Runs `command` with the server settings; its answer is printed, its outcome the exit code.
pub async fn run(command: Command, settings: Settings) -> ExitCode {
    let now = SystemClock.now();
    match command {
        Command::Serve => serve::run(settings).await,
        Command::Users { command } => users::run(command, &settings, now).await,
        Command::Apps { command } => apps::run(*command, &settings, now).await,
        Command::ResourceServers { command } => {
            resource_servers::run(command, &settings, now).await
        }
        Command::Grants { command } => grants::run(command, &settings, now).await,
        Command::Keys { command } => keys::run(command, &settings, now).await,
        Command::Partners { command } => partners::run(command, &settings, now).await,
        Command::Operators { command } => operators::run(command, &settings, now).await,
        Command::Reviews { command } => reviews::run(command, &settings, now).await,
        Command::Audit(args) => audit::run(args, &settings).await,
    }
}
