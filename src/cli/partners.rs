//! `onyx-id partners create | add-member | show`.

use std::process::ExitCode;

use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use strum::VariantNames;

use super::output::{open_db, program_result, report};
use crate::admin::CLI_ACTOR;
use crate::config::Settings;
use crate::partner::partners::{self, PartnerSpec, Role};

#[derive(Subcommand)]
pub enum PartnersCommand {
    /// Register a partner with its owner (an existing account). Prints its first API key.
    Create {
        #[arg(long)]
        name: String,
        /// The partner's website (https).
        #[arg(long)]
        website: String,
        /// Where the partner's support is reached (email or URL).
        #[arg(long)]
        support_contact: String,
        /// A market the partner serves (ISO 3166-1 alpha-2; repeat).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// The email of the account that owns the partner.
        #[arg(long)]
        owner: String,
    },
    /// Add a member (owner or developer) to a partner.
    AddMember {
        #[arg(long, allow_hyphen_values = true)]
        partner: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = PossibleValuesParser::new(Role::VARIANTS))]
        role: String,
    },
    /// Print a partner's profile, members and keys.
    Show {
        #[arg(long, allow_hyphen_values = true)]
        partner: String,
    },
}

pub async fn run(command: PartnersCommand, settings: &Settings, now: i64) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(match command {
        PartnersCommand::Create {
            name,
            website,
            support_contact,
            regions,
            owner,
        } => program_result(
            partners::create_partner(
                &db,
                now,
                CLI_ACTOR,
                PartnerSpec {
                    name,
                    website,
                    regions,
                    support_contact,
                    owner_email: owner,
                },
            )
            .await,
        ),
        PartnersCommand::AddMember {
            partner,
            email,
            role,
        } => program_result(match Role::parse(&role) {
            Ok(role) => partners::add_member(&db, now, CLI_ACTOR, &partner, &email, role).await,
            Err(e) => Err(e),
        }),
        PartnersCommand::Show { partner } => {
            program_result(partners::partner_view(&db, &partner).await)
        }
    })
}
