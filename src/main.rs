//! `ifox`: parse the command line, load settings, run. Everything else lives in the library.
#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ifox::cli::Cli::parse();
    match ifox::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ifox: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
