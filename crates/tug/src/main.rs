//! The `tug` binary: parses the command line and hands a validated configuration to a role.

mod agent;
mod cli;
mod controller_manager;
mod logging;
mod scheduler;
mod server;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init();
    let result = match cli.command {
        cli::Command::Server(args) => server::run(args.into_options()),
        cli::Command::Scheduler(args) => scheduler::run(args.into_config()),
        cli::Command::ControllerManager(args) => controller_manager::run(args.into_config()),
        cli::Command::Agent(args) => match args.hollow_config() {
            Some(hollow) => agent::run_hollow(hollow),
            None => agent::run(args.into_config()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
