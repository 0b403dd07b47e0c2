use crate::sweep::SweepStore;
use std::sync::Arc;
use std::time::Duration;

use super::testing::TestDatabase;
use super::*;
use crate::conformance::{Factory, STALE_AFTER};

fn options(clock: Arc<dyn Clock>) -> PostgresOptions {
    PostgresOptions {
        time: TimeSource::Clock(clock),
        stale_after: STALE_AFTER,
        retry_for: Duration::from_secs(5),
        pool_size: 4,
        artifacts: None,
    }
}

const WITH_FOLDER: Factory = |clock| {
    let database = TestDatabase::create()?;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}"));
    let options = PostgresOptions { artifacts: Some(dir.path().join("store")), ..options(clock) };
    let store = PostgresStore::open(database.url(), options).unwrap_or_else(|e| panic!("{e}"));
    Some((Arc::new(store), Box::new((database, dir))))
};

crate::conformance_suite!(conformance, WITH_FOLDER);

fn store_on(database: &TestDatabase, time: TimeSource) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(
        database.url(),
        PostgresOptions { time, retry_for: Duration::from_secs(10), ..PostgresOptions::default() },
    )
}

fn new_sweep(id: &str) -> crate::NewSweep {
    crate::NewSweep {
        sweep_id: id.into(),
        name: id.into(),
        spec: serde_json::json!({"space": {}}),
        parent: None,
        created_at: Timestamp(0),
    }
}

#[test]
fn passwords_stay_out_of_messages() {
    assert_eq!(redact("postgres://ann:s3cret@db.lab:5432/runs"), "postgres://ann:***@db.lab:5432/runs");
    assert_eq!(redact("postgresql://ann@db/runs?sslmode=disable"), "postgresql://ann@db/runs?sslmode=disable");
    assert_eq!(redact("postgres://db/runs"), "postgres://db/runs");
    assert!(is_postgres_url("postgresql://x/y") && is_postgres_url("postgres://x") && !is_postgres_url("./postgres"));
}

#[test]
fn leases_and_heartbeats_use_the_database_clock() -> Result<(), StoreError> {
    let Some(database) = TestDatabase::create() else { return Ok(()) };
    let store = store_on(&database, TimeSource::Database)?;
    // A worker whose own clock is a year behind still gets a lease that ends after the server's now.
    store.create_sweep(&new_sweep("s"))?;
    let claim = crate::Claim::New { number: 0, params: serde_json::json!({}), target: 1 };
    let trial = store.claim_trial("s", &claim, "w", Duration::from_secs(60))?.expect("claimed");
    let server_now = Timestamp::now();
    let lease = trial.lease_until.expect("a running trial has a lease");
    assert!(lease.0 > server_now.0 + 50_000 && lease.0 < server_now.0 + 70_000, "{lease} against {server_now}");
    // A heartbeat stamped by a writer whose clock is far behind is recorded at the server's time,
    // so the run is not taken for crashed.
    let mut run = crate::conformance::sample_run("r1", 0.1, "mlp");
    run.started_at = Timestamp(0);
    store.write("r1", &[Write::Start(&run), Write::Heartbeat { at: Timestamp(1_000) }])?;
    let detail = store.get_run("r1")?;
    assert_eq!(detail.row.status, RunState::Running, "{:?}", detail.row.reason);
    assert!(detail.heartbeat_at.0 >= server_now.0 - 5_000, "{}", detail.heartbeat_at);
    Ok(())
}

#[test]
fn racing_workers_get_each_trial_once() -> Result<(), StoreError> {
    let Some(database) = TestDatabase::create() else { return Ok(()) };
    let store = Arc::new(store_on(&database, TimeSource::Database)?);
    store.create_sweep(&new_sweep("s"))?;
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || -> Result<Vec<u64>, StoreError> {
                let mut won = Vec::new();
                for number in 0..20 {
                    let claim = crate::Claim::New { number, params: serde_json::json!({"w": w}), target: 1 };
                    if store.claim_trial("s", &claim, &format!("w{w}"), Duration::from_secs(60))?.is_some() {
                        won.push(number);
                    }
                }
                Ok(won)
            })
        })
        .collect();
    let mut all: Vec<u64> = Vec::new();
    for worker in workers {
        all.extend(worker.join().expect("worker thread")?);
    }
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<_>>(), "every trial claimed exactly once");
    let (trials, version) = store.trials_since("s", 0)?;
    assert_eq!((trials.len(), version), (20, 20), "one counted change per claim, none for the lost races");
    // Now all of them race to continue one stale trial.
    for trial in &trials {
        store.update_trial(
            "s",
            trial.number,
            trial.worker.as_deref().unwrap_or_default(),
            &crate::TrialUpdate { state: Some(crate::TrialState::Paused), ..crate::TrialUpdate::default() },
        )?;
    }
    let (paused, _) = store.trials_since("s", 0)?;
    let version = paused[3].version;
    let racers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let claim = crate::Claim::Continue { number: 3, version, target: 3 };
                store.claim_trial("s", &claim, &format!("v{w}"), Duration::from_secs(60)).map(|t| t.is_some())
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.join().expect("racer thread")?);
    }
    assert_eq!(winners, 1, "exactly one worker continues the trial");
    Ok(())
}

#[test]
fn a_lost_connection_is_retried_and_loses_no_points() -> Result<(), StoreError> {
    let Some(database) = TestDatabase::create() else { return Ok(()) };
    let store = store_on(&database, TimeSource::Database)?;
    let run = crate::conformance::sample_run("r1", 0.1, "mlp");
    store.write("r1", &[Write::Start(&run)])?;
    let wall = Timestamp(0);
    store.write("r1", &[Write::Scalar { key: "loss", step: 1, epoch: 1, wall, value: 1.0 }])?;
    // The server drops every connection of the database (as a restart or a network cut would).
    let mut admin = postgres::Client::connect(database.url(), NoTls).map_err(|e| store.server("connect", e))?;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .map_err(|e| store.server("terminate connections", e))?;
    assert!(!killed.is_empty(), "the store's pooled connection was there to cut");
    store.write("r1", &[Write::Scalar { key: "loss", step: 2, epoch: 1, wall, value: 0.5 }])?;
    let points = store.series("r1", "loss")?;
    assert_eq!(points.iter().map(|p| p.step).collect::<Vec<_>>(), [1, 2]);
    Ok(())
}

#[test]
fn an_unreachable_server_is_reported_with_its_url_and_no_password() {
    let options = PostgresOptions { retry_for: Duration::from_millis(200), ..PostgresOptions::default() };
    // Port 1 on loopback: nothing listens there.
    let error = PostgresStore::open("postgres://ann:s3cret@127.0.0.1:1/runs", options).expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("postgres://ann:***@127.0.0.1:1/runs"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn many_openers_migrate_once_and_a_newer_schema_is_refused() -> Result<(), StoreError> {
    let Some(database) = TestDatabase::create() else { return Ok(()) };
    let url = database.url().to_string();
    let openers: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::open(&url, PostgresOptions::default()).map(|_| ()))
        })
        .collect();
    for opener in openers {
        opener.join().expect("opener thread")?;
    }
    let mut admin = postgres::Client::connect(&url, NoTls).map_err(|e| StoreError::Server {
        store: url.clone(),
        action: "connect",
        source: Box::new(e),
    })?;
    let versions = admin.query("SELECT version FROM regimen_schema", &[]).map_err(|e| StoreError::Server {
        store: url.clone(),
        action: "read",
        source: Box::new(e),
    })?;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].get::<_, i64>(0), PostgresStore::schema_version());
    admin.execute("UPDATE regimen_schema SET version = 999", &[]).map_err(|e| StoreError::Server {
        store: url.clone(),
        action: "write",
        source: Box::new(e),
    })?;
    let refused = PostgresStore::open(&url, PostgresOptions::default()).expect_err("refused");
    assert!(matches!(refused, StoreError::SchemaTooNew { found: 999, .. }), "{refused}");
    Ok(())
}

#[test]
fn runs_copy_to_postgres_and_back_unchanged() -> Result<(), StoreError> {
    let Some(database) = TestDatabase::create() else { return Ok(()) };
    let dirs = [tempfile::tempdir(), tempfile::tempdir(), tempfile::tempdir()]
        .map(|d| d.unwrap_or_else(|e| panic!("no temporary folder: {e}")));
    let laptop = crate::SqliteStore::open(dirs[0].path())?;
    let team = PostgresStore::open(
        database.url(),
        PostgresOptions { artifacts: Some(dirs[1].path().to_path_buf()), ..PostgresOptions::default() },
    )?;
    let home = crate::SqliteStore::open(dirs[2].path())?;
    let run = crate::conformance::sample_run("r1", 0.01, "mlp");
    let body = serde_json::json!({"acc": 0.75});
    let wall = Timestamp(1_000);
    let mut batch = vec![Write::Start(&run)];
    batch.extend((0..5000).map(|step| Write::Scalar {
        key: "loss",
        step,
        epoch: 1,
        wall,
        value: 1.0 / (step + 1) as f64,
    }));
    batch.push(Write::Scalar { key: "loss", step: 5000, epoch: 1, wall, value: f64::NAN });
    batch.push(Write::Report { split: "test", step: 5000, epoch: 1, wall, body: &body });
    batch.push(Write::End { status: RunState::Finished, reason: None, at: Timestamp(2_000) });
    laptop.write("r1", &batch)?;
    laptop.add_note("r1", "first try")?;
    laptop.set_tag("r1", "stage", "baseline")?;
    let all = Query::parse(None, None, None)?;
    assert_eq!(crate::copy_runs(&laptop, &team, &all)?.copied, ["r1"]);
    assert_eq!(crate::copy_runs(&team, &home, &all)?.copied, ["r1"]);
    assert_eq!(crate::copy_runs(&laptop, &team, &all)?.present, ["r1"], "a second copy changes nothing");
    let (before, after) = (laptop.get_run("r1")?, home.get_run("r1")?);
    assert_eq!(format!("{:?}", after.row), format!("{:?}", before.row), "the last loss is NaN");
    assert_eq!((&after.config, &after.provenance, after.seed), (&before.config, &before.provenance, before.seed));
    assert_eq!(format!("{:?}", after.series), format!("{:?}", before.series));
    assert_eq!((&after.reports, &after.notes), (&before.reports, &before.notes));
    Ok(())
}
