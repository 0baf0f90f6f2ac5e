//! The `fhirgate` binary: parse the command line and run it.

use std::io::Write as _;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = fhirgate::cli::Cli::parse();
    match fhirgate::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // the reader of stdout is gone (`… | head`): stop quietly
        Err(e) if fhirgate::stdout::is_closed_pipe(&e) => {
            std::process::ExitCode::from(fhirgate::stdout::CLOSED_PIPE_STATUS)
        }
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "fhirgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
