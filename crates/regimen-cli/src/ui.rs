//! `regimen ui`: the dashboard's server over the store that `--store` names.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Args;
use regimen_ui::{Analyses, Server, TOKEN_ENV, UiOptions};

use crate::commands::{StoreArg, open};

/// Flags of `regimen ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Address to listen on. Anything but a loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7070)]
    pub port: u16,
    /// A token every request must carry as `Authorization: Bearer TOKEN`.
    #[arg(long, env = TOKEN_ENV, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Serves until Ctrl-C.
pub fn run(args: &UiArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let root = crate::commands::files_root(store.as_ref(), &args.store.store)?;
    let options = UiOptions { host: args.host, port: args.port, token: args.token.clone() };
    let analyses = Analyses {
        diagnosis: std::sync::Arc::new(|store, run| {
            Ok(crate::commands::diagnose::Diagnosis::of(store, run, None)?.json())
        }),
        sweep_report: std::sync::Arc::new(crate::sweep::report::json),
    };
    let server = Server::bind(store, analyses, root, &options)?;
    let address = server.address();
    let page = match &args.token {
        // The page keeps the token for its requests and drops it from the address bar.
        Some(token) => format!("http://{address}/?token={token}"),
        None => format!("http://{address}/"),
    };
    say!(
        "regimen ui · store {} · open {page} · API at /api/ (described at /api/openapi.json) · Ctrl-C stops it",
        args.store.store.display(),
    );
    // Ctrl-C or SIGTERM (a service manager, `kill`) set the CLI's interrupt flag, also when they
    // arrive before the server runs; a second one ends the process at once.
    server.run(async {
        while !regimen_train::interrupt::requested() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
