//! The `stepsweep` binary: parse, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use stepsweep::app;
use stepsweep::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap's first line names the problem; the usage that follows is noise here.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{}; see 'stepsweep --help'", first.trim_end_matches('.'));
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Run(args) => app::run(args),
        Command::Merge(args) => app::merge(args),
        Command::Devices => app::devices(),
        Command::Presets => {
            app::list_presets();
            Ok(())
        }
        Command::Plot(args) => app::plot(args),
        Command::Reproduce(args) => app::reproduce(args),
        Command::Bench(args) => app::bench(args),
        Command::Boundary(args) => app::boundary(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
