//! `ifox`: parse the command line, load settings, run. Everything else lives in the library.
#![forbid(unsafe_code)]

use clap::Parser;

// mimalloc rather than the system allocator: the webhook path allocates and frees many short-lived
// buffers (bodies of up to 512 KiB, headers); `just bench-ingest` measured about 5% more throughput.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
