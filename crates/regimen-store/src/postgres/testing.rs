//! Throwaway databases on a real PostgreSQL server, for the conformance suite and the CLI's tests.
//!
//! `REGIMEN_TEST_POSTGRES` names a server (a `postgres://` URL of a user that may create databases);
//! `.ci/run` starts one with `.ci/postgres.sh`. Each [`TestDatabase`] is a new, empty database on
//! it, dropped again when the value is. Without the variable the tests that need one are skipped,
//! unless `REGIMEN_REQUIRE_POSTGRES=1` says they must run (CI sets it), which makes them fail.

use postgres::{Client, NoTls};

/// The variable naming the test server.
pub const SERVER_ENV: &str = "REGIMEN_TEST_POSTGRES";

/// The variable that makes a missing test server an error.
pub const REQUIRE_ENV: &str = "REGIMEN_REQUIRE_POSTGRES";

/// A fresh database, dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server; `None` (with a note on stderr) when no server
    /// is configured and none is required.
    ///
    /// # Panics
    /// When a server is required but not configured, or cannot create the database: a test that
    /// needs PostgreSQL must not pass without it.
    pub fn create() -> Option<TestDatabase> {
        let Ok(server) = std::env::var(SERVER_ENV) else {
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_ENV}=1 but {SERVER_ENV} is not set: start one with `bash .ci/postgres.sh start DIR`");
            }
            eprintln!("skipped: no PostgreSQL server ({SERVER_ENV} is not set; `.ci/run` starts one)");
            return None;
        };
        let name = format!("regimen_test_{:016x}", rand::random::<u64>());
        let mut admin = Client::connect(&server, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test server {SERVER_ENV}={server}: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"));
        let url = match server.rsplit_once('/') {
            Some((base, tail)) if !base.ends_with('/') => {
                let query = tail.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
                format!("{base}/{name}{query}")
            }
            _ => format!("{server}/{name}"),
        };
        Some(TestDatabase { server, name, url })
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: a database left behind is removed with the throwaway cluster.
        if let Ok(mut admin) = Client::connect(&self.server, NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
