//! The server of `regimen ui`: a JSON API over any [`RunStore`], for the dashboard's front end and
//! for scripts.
//!
//! It is built for a browser on the same machine, and guarded against the ways other local web
//! servers of the same kind were attacked ([`guard`]):
//! - bound to 127.0.0.1 by default; any other address needs a token that every request carries
//!   (`Authorization: Bearer TOKEN`), and a request without it gets 401;
//! - a `Host` allowlist against DNS rebinding (a page on another name that resolves to 127.0.0.1);
//! - state-changing requests must have a same-origin (or no) `Origin` and a JSON body: a cross-site
//!   form or `text/plain` POST (MLflow's CVE-2023-43472) is refused before any handler runs;
//! - a strict Content-Security-Policy, `nosniff` and no framing on every response; bodies over
//!   64 KiB are refused;
//! - files are served only by looking up a run's recorded artifact by index, then checking that the
//!   resolved path lies inside the store (MLflow's path-traversal CVEs came from joining user paths).
//!
//! Read-only except notes, tags and stopping sweeps and trials. The API is described by the
//! OpenAPI document at `/api/openapi.json`. The front end (TypeScript, in `web/`) is bundled into
//! `assets/` and embedded in the binary, so the dashboard needs nothing else at run time.

mod api;
mod assets;
pub mod compare;
pub mod downsample;
mod guard;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use regimen_store::RunStore;

pub use guard::TOKEN_ENV;

/// Where and how the server listens.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The address to bind; loopback unless a token is given.
    pub host: IpAddr,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// The token every request must carry; required off loopback.
    pub token: Option<String>,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve on {0} without a token: anyone who can reach it could read and edit your runs; pass \
         --token (or set {TOKEN_ENV}), or bind to 127.0.0.1"
    )]
    TokenRequired(IpAddr),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// An analysis that lives above this crate (it needs the training crates' definitions): the
/// diagnosis of a run, or the report of a sweep, as the JSON its `--json` command prints, for the
/// run or sweep id given.
pub type Analysis = Arc<dyn Fn(&dyn RunStore, &str) -> anyhow::Result<serde_json::Value> + Send + Sync>;

/// The analyses the dashboard shows beside the store's own data.
#[derive(Clone)]
pub struct Analyses {
    /// `regimen diagnose RUN --json`.
    pub diagnosis: Analysis,
    /// `regimen sweep report SWEEP --json`.
    pub sweep_report: Analysis,
}

/// What every request handler can reach.
#[derive(Clone)]
pub(crate) struct State {
    pub store: Arc<dyn RunStore>,
    pub analyses: Analyses,
    /// The store's folder: every file served lies inside it.
    pub root: PathBuf,
    pub token: Option<String>,
    /// `Host` values accepted (`127.0.0.1:7070`, `localhost:7070`, ...).
    pub hosts: Vec<String>,
    /// The last listing of every run, reused while the store reports no write (see
    /// [`api::all_runs`]).
    pub listing: Arc<std::sync::Mutex<Option<api::Listing>>>,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: std::net::TcpListener,
    state: State,
}

impl Server {
    /// Binds the address of `options` for the store at `root`; refuses a non-loopback address
    /// without a token.
    pub fn bind(
        store: Arc<dyn RunStore>,
        analyses: Analyses,
        root: PathBuf,
        options: &UiOptions,
    ) -> Result<Server, UiError> {
        if !options.host.is_loopback() && options.token.is_none() {
            return Err(UiError::TokenRequired(options.host));
        }
        let address = SocketAddr::new(options.host, options.port);
        let listener = std::net::TcpListener::bind(address).map_err(|source| UiError::Bind { address, source })?;
        let port = listener.local_addr().map_err(|source| UiError::Bind { address, source })?.port();
        let mut hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
        let own = match options.host {
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
            IpAddr::V4(ip) => format!("{ip}:{port}"),
        };
        if !hosts.contains(&own) {
            hosts.push(own);
        }
        let listing = Arc::default();
        Ok(Server { listener, state: State { store, analyses, root, token: options.token.clone(), hosts, listing } })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until the process ends (or `shutdown` resolves), on a runtime of its own.
    pub fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), UiError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(UiError::Serve)?;
        runtime.block_on(async move {
            self.listener.set_nonblocking(true).map_err(UiError::Serve)?;
            let listener = tokio::net::TcpListener::from_std(self.listener).map_err(UiError::Serve)?;
            // List the runs now, so that the first page to open finds them listed.
            let warm = self.state.clone();
            tokio::task::spawn_blocking(move || api::all_runs(&warm));
            let app = api::router(self.state);
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(UiError::Serve)
        })
    }
}
