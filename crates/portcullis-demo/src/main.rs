//! `cargo run --release` starts the reference app on 127.0.0.1:8000.

use portcullis::config::Settings;

#[tokio::main]
async fn main() {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            for problem in &error.problems {
                eprintln!("portcullis: configuration error: {problem}");
            }
            std::process::exit(2);
        }
    };
    // In production, one line per problem and exit status 2 before anything listens.
    if let Err(refused) = settings.enforce() {
        eprintln!("{refused}");
        std::process::exit(2);
    }
    let logs = portcullis::logging::init(&settings.log_filter);
    let served = portcullis_demo::serve(settings, shutdown_signal()).await;
    // Every queued line is written before the process ends, whichever way it ends.
    drop(logs);
    if let Err(error) = served {
        eprintln!("portcullis: cannot start: {error}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
