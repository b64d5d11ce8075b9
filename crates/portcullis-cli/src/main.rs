//! The `portcullis` command: `keygen`, `check`, `dev-cert`, `hash-password`,
//! `verify-password`, `audit`.

mod audit;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::config::Settings;
use portcullis::keys::SecretKey;
use portcullis::password::{PasswordConfig, PasswordError, Passwords};

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
    /// Hash the password read from standard input (one line) with Argon2id and the
    /// default parameters, and print the PHC string.
    ///
    /// The password policy is not checked: operators hash what they are given. An
    /// empty password is refused (exit status 2), so an empty or closed standard input
    /// never becomes a valid hash.
    ///
    /// Example: printf '%s\n' 'the password' | portcullis hash-password
    HashPassword,
    /// Check the password read from standard input (one line) against HASH: exit
    /// status 0 and "match" when it matches, 1 and "no match" when not, 2 when HASH is
    /// malformed or of an unsupported kind.
    ///
    /// HASH may be Argon2 ($argon2id$, $argon2i$, $argon2d$), werkzeug (scrypt:N:r:p$…,
    /// pbkdf2:sha256:…$…, pbkdf2:sha512:…$…) or bcrypt ($2a$, $2b$, $2y$).
    VerifyPassword {
        /// The stored hash, quoted so that the shell leaves its `$` alone.
        hash: String,
    },
    /// Grade a running site from outside: the HTTP Observatory's tests, scored as it
    /// scores them, and the checks it does not make. Sends a handful of GET requests,
    /// one OPTIONS and one TRACE (both safe methods), never a state-changing one.
    ///
    /// Exit status: 0, or 1 when --fail-under is given and the grade is below it;
    /// 2 when the site cannot be audited.
    ///
    /// Example: portcullis audit https://localhost:8443 --ca data/tls/cert.pem
    Audit {
        /// The page to grade: https://example.com, http://127.0.0.1:8000/login …
        url: String,
        /// Print JSON (score, grade, tests, beyond) instead of the table.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when the grade is below this one (A+, A, A-, B+ … F).
        #[arg(long, value_name = "GRADE")]
        fail_under: Option<String>,
        /// Go on when the certificate is not trusted; it is graded as untrusted.
        #[arg(long)]
        insecure: bool,
        /// Also trust the certificates in this PEM file (a development certificate).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// The plain-HTTP port to probe for the redirect to HTTPS (default: the
        /// URL's port when it names one, else 80).
        #[arg(long, value_name = "PORT")]
        http_port: Option<u16>,
        /// Seconds allowed for each connection (connect, handshake, answer).
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        timeout: u64,
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
        Command::HashPassword => hash_password(),
        Command::VerifyPassword { hash } => verify_password(&hash),
        Command::Audit {
            url,
            json,
            fail_under,
            insecure,
            ca,
            http_port,
            timeout,
        } => run_audit(
            &url,
            json,
            fail_under.as_deref(),
            insecure,
            ca,
            http_port,
            timeout,
        ),
    }
}

fn run_audit(
    url: &str,
    json: bool,
    fail_under: Option<&str>,
    insecure: bool,
    ca: Option<PathBuf>,
    http_port: Option<u16>,
    timeout: u64,
) -> ExitCode {
    let fail = |message: String| {
        eprintln!("portcullis audit: {message}");
        ExitCode::from(USAGE_ERROR)
    };
    let threshold = match fail_under {
        None => None,
        Some(grade) => match audit::GRADES
            .iter()
            .position(|g| g.eq_ignore_ascii_case(grade))
        {
            Some(rank) => Some(rank),
            None => {
                return fail(format!(
                    "--fail-under {grade}: expected one of {}",
                    audit::GRADES.join(" ")
                ))
            }
        },
    };
    let url = match audit::parse_url(url) {
        Ok(url) => url,
        Err(error) => return fail(error.to_string()),
    };
    let ca = match ca {
        None => Vec::new(),
        Some(path) => match std::fs::read(&path) {
            Err(error) => return fail(format!("--ca {}: {error}", path.display())),
            Ok(pem) => match audit::read_ca(&pem) {
                Ok(certs) => certs,
                Err(error) => return fail(error.to_string()),
            },
        },
    };
    if timeout == 0 {
        return fail("--timeout must be at least 1 second".into());
    }
    let options = audit::AuditOptions {
        url,
        http_port,
        ca,
        insecure,
        timeout: std::time::Duration::from_secs(timeout),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(error.to_string()),
    };
    let report = match runtime.block_on(audit::run(&options)) {
        Ok(report) => report,
        Err(error) => return fail(error.to_string()),
    };
    let text = if json {
        format!("{:#}\n", audit::render_json(&report))
    } else {
        audit::render_table(&report)
    };
    // A reader that stops early (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    let rank = audit::GRADES
        .iter()
        .position(|g| *g == report.grade)
        .unwrap_or(audit::GRADES.len());
    match threshold {
        Some(threshold) if rank > threshold => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

// Exit status for a malformed hash or unreadable input, apart from 1 ("no match").
const USAGE_ERROR: u8 = 2;

/// Reads one line from standard input without its line ending (`\n` or `\r\n`).
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
    if let Some(stripped) = line.strip_suffix('\n') {
        line.truncate(stripped.strip_suffix('\r').unwrap_or(stripped).len());
    }
    Ok(line)
}

fn passwords() -> Result<Passwords, ExitCode> {
    Passwords::new(PasswordConfig::default()).map_err(|error| {
        eprintln!("portcullis: {error}");
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout)]
fn hash_password() -> ExitCode {
    let password = match read_password() {
        Ok(password) if password.is_empty() => {
            eprintln!("portcullis hash-password: no password on standard input");
            return ExitCode::from(USAGE_ERROR);
        }
        Ok(password) => password,
        Err(message) => {
            eprintln!("portcullis hash-password: {message}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let passwords = match passwords() {
        Ok(passwords) => passwords,
        Err(code) => return code,
    };
    match passwords.hash_blocking(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis hash-password: {error}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn verify_password(hash: &str) -> ExitCode {
    let password = match read_password() {
        Ok(password) => password,
        Err(message) => {
            eprintln!("portcullis verify-password: {message}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let passwords = match passwords() {
        Ok(passwords) => passwords,
        Err(code) => return code,
    };
    match passwords.verify_blocking(&password, hash.trim()) {
        Ok(true) => {
            println!("match");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("no match");
            ExitCode::FAILURE
        }
        Err(PasswordError::Malformed) => {
            eprintln!(
                "portcullis verify-password: the hash is malformed, of an unsupported \
                 kind, or asks for more work than the limits allow"
            );
            ExitCode::from(USAGE_ERROR)
        }
        Err(error) => {
            eprintln!("portcullis verify-password: {error}");
            ExitCode::from(USAGE_ERROR)
        }
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
