//! Developer tasks (`cargo xtask …`): benchmarks, codegen, test images, local clusters.

mod codegen;
mod gofields;
mod protobuf;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for the Tug workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// One developer task.
#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate the committed API artifacts from upstream's sources: the OpenAPI
    /// definitions (crates/api/openapi/v1.33.json) and the protobuf field table
    /// (crates/api/openapi/protobuf-v1.33.json, from the k8s-pb crate and the Go field facts
    /// in xtask/data/go-fields-v1.33.json).
    Codegen {
        /// Do not write anything: fail if the committed artifacts differ from what would be
        /// generated (for CI).
        #[arg(long)]
        check: bool,
        /// Read the upstream `_definitions.json` from this file instead of downloading the
        /// `kubernetes-validate` wheel from PyPI.
        #[arg(long, value_name = "PATH")]
        definitions: Option<PathBuf>,
        /// Re-read the Go field facts from a checkout of k8s.io/api (at the tag
        /// xtask/src/gofields.rs names) instead of the committed facts file; needs
        /// `--go-apimachinery` too.
        #[arg(long, value_name = "DIR", requires = "go_apimachinery")]
        go_api: Option<PathBuf>,
        /// A checkout of k8s.io/apimachinery at the same tag, with `--go-api`.
        #[arg(long, value_name = "DIR", requires = "go_api")]
        go_apimachinery: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Codegen {
            check,
            definitions,
            go_api,
            go_apimachinery,
        } => {
            let go = go_api
                .as_deref()
                .zip(go_apimachinery.as_deref())
                .map(|(api, apimachinery)| codegen::GoSources { api, apimachinery });
            codegen::run(check, definitions.as_deref(), go)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
