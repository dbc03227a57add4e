//! The command line's clap definition, checked as a whole: clap's own consistency checks on
//! every command, and each command group reachable from the top.

use clap::CommandFactory;
use onyx_id::cli::Cli;

#[test]
fn every_command_of_the_cli_passes_clap_s_consistency_checks() {
    Cli::command().debug_assert();
}

#[test]
fn the_cli_offers_every_command_group_in_its_order() {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "serve",
            "users",
            "apps",
            "resource-servers",
            "grants",
            "keys",
            "partners",
            "operators",
            "reviews",
            "audit",
        ]
    );
}
