//! The `tug` binary: parses the command line and hands a validated configuration to a role.

use clap::Parser;

/// Tug: a Kubernetes-compatible container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "tug", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
