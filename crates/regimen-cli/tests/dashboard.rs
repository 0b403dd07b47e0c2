//! The dashboard end to end: the real `regimen ui` over a store that real training and a real
//! sweep wrote, driven in Debian's headless Chromium by `crates/regimen-ui/web/e2e/dashboard.mjs`
//! (playwright-core pointed at the system browser). Screenshots of every step land in
//! `target/tmp/dashboard/`.
//!
//! Needs Node.js, `npm ci` in `crates/regimen-ui/web` and `/usr/bin/chromium` (or
//! `REGIMEN_CHROMIUM`); `.ci/run` installs them and sets `REGIMEN_REQUIRE_BROWSER=1`, which turns
//! a missing piece into a failure instead of a skip.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{regimen_json, train_tiny};
use regimen_store::{Query, RunStore};

/// Stops the server when the test ends, however it ends.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the browser test needs, or why it cannot run here.
fn browser_setup() -> Result<(PathBuf, PathBuf), String> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../regimen-ui/web");
    let chromium = std::env::var("REGIMEN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).is_file() {
        return Err(format!("no Chromium at {chromium} (apt-get install chromium)"));
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        return Err(format!("no playwright-core in {} (npm ci there)", web.display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("no node on PATH".into());
    }
    Ok((web, PathBuf::from(chromium)))
}

/// Starts `regimen ui` on a free port; returns it and the address it printed.
fn serve(store: &Path) -> (Serving, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["ui", "--port", "0", "--store"])
        .arg(store)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("regimen ui starts");
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let serving = Serving(child);
    let banner = lines.next().and_then(Result::ok).unwrap_or_default();
    let url = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("regimen ui printed no address: {banner}"))
        .to_string();
    // Keep draining what the server says, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (serving, url)
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let (web, chromium) = match browser_setup() {
        Ok(setup) => setup,
        Err(why) if std::env::var("REGIMEN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("the browser test is required but cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for seed in ["1", "2", "3"] {
        train_tiny(&store, &["--epochs", "3", "--seed", seed, "--experiment", "seeds"]);
    }
    train_tiny(&store, &["--epochs", "2", "--lr", "0.01", "--experiment", "other"]);
    let sweep = dir.path().join("tiny.toml");
    std::fs::write(
        &sweep,
        "[sweep]\ntrials = 3\nobjective = \"val.acc\"\n\n[train]\ndataset = \"spirals\"\ndataset_size = 200\n\
         model = \"mlp\"\nhidden = [8]\nepochs = 2\n\n[params]\nlr = \"loguniform(1e-3, 1e-1)\"\n",
    )
    .unwrap();
    let outcome =
        regimen_json(&["sweep", "run", sweep.to_str().unwrap(), "--store", store.to_str().unwrap(), "--json"]);
    assert_eq!(outcome["status"], "finished", "{outcome}");

    let (_server, url) = serve(&store);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let note = format!("checked in the browser test at {}", std::process::id());
    let run = Command::new("node")
        .current_dir(&web)
        .arg("e2e/dashboard.mjs")
        .args([url.as_str(), screenshots.to_str().unwrap(), note.as_str()])
        .env("REGIMEN_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the browser test failed (screenshots in {}):\n{said}", screenshots.display());

    // The note typed in the browser is in the store.
    let store = regimen_store::SqliteStore::open(&store).unwrap();
    let noted = store
        .list_runs(&Query::default())
        .unwrap()
        .iter()
        .any(|row| store.get_run(&row.run_id).unwrap().notes.iter().any(|n| n.body == note));
    assert!(noted, "the note saved in the browser is not in the store");
    for shot in ["1-runs", "4-run", "7-seed-band", "8-sweep"] {
        assert!(screenshots.join(format!("{shot}.png")).is_file(), "no screenshot {shot}");
    }
}

#[test]
fn the_server_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    train_tiny(&store, &["--epochs", "1"]);
    let (mut server, _) = serve(&store);
    let pid = server.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(sent.success());
    // A service manager waits a while, then kills: stopping must not need a second signal.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "regimen ui ignored SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
