//! The `portcullis` command: `keygen`, `check`, `dev-cert`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::config::Settings;
use portcullis::keys::SecretKey;

/// Portcullis: secure defaults for axum, checked.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new 256-bit secret key (base64url) for PORTCULLIS_SECRET_KEY.
    Keygen,
    /// Audit the current environment against what production requires, without
    /// starting anything; exit status 1 when a check fails.
    Check,
    /// Write a self-signed certificate for localhost (cert.pem, key.pem).
    DevCert {
        /// The folder to write into.
        #[arg(long, default_value = "./data/tls")]
        out: PathBuf,
    },
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen => {
            println!("{}", &*SecretKey::generate().to_base64url());
            ExitCode::SUCCESS
        }
        Command::Check => check(),
        Command::DevCert { out } => match portcullis::https::write_dev_cert(&out) {
            Ok((cert, key)) => {
                println!("certificate: {}", cert.display());
                println!("private key: {}", key.display());
                println!(
                    "serve it with PORTCULLIS_TLS_CERT={} PORTCULLIS_TLS_KEY={}",
                    cert.display(),
                    key.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("portcullis dev-cert: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

#[allow(clippy::print_stdout)]
fn check() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            println!("check   status  detail");
            for problem in &error.problems {
                println!("config  FAIL    {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    let report = settings.audit();
    println!(
        "Production audit (PORTCULLIS_ENV={}):\n",
        settings.environment.as_str()
    );
    print!("{report}");
    let failures = report.failures().count();
    if failures == 0 {
        println!("\nAll checks pass.");
        ExitCode::SUCCESS
    } else {
        println!("\n{failures} check(s) fail: production would refuse to start.");
        ExitCode::FAILURE
    }
}
