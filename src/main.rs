//! The `fhirgate` binary: parse the command line and run it.

use std::io::Write as _;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = fhirgate::cli::Cli::parse();
    match fhirgate::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "fhirgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
