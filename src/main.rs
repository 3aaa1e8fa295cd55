use std::process::ExitCode;

use clap::Parser;
use terrace::app;
use terrace::cli::Cli;
use terrace::ui::Printer;

fn main() -> ExitCode {
    terrace::tls::install_crypto_provider();
    let cli = Cli::parse();
    let printer = Printer::new(cli.output.format(), cli.verbosity());
    match app::run(cli, &printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::from(app::exit_code(&err))
        }
    }
}
