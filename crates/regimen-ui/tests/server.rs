//! The dashboard server over a real SQLite store, spoken to in raw HTTP/1.1 (so that the tests send
//! exactly the bytes an attacker would: foreign hosts, `text/plain` bodies, encoded traversals).

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;

use regimen_store::conformance::sample_run;
use regimen_store::{RunStore, SqliteStore, Timestamp, Write};
use regimen_ui::{Analyses, Server, UiError, UiOptions};
use serde_json::Value;

/// A store with two runs; `r1` has a `train.loss` series of `points` points with one spike, and
/// an artifact inside the store.
fn store(points: usize, spike: usize) -> (tempfile::TempDir, Arc<dyn RunStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for (id, lr) in [("r1", 0.01), ("r2", 0.1)] {
        store.write(id, &[Write::Start(&sample_run(id, lr, "mlp"))]).unwrap();
    }
    let wall = Timestamp(1_714_564_800_000);
    let values: Vec<f64> = (0..points).map(|i| if i == spike { 50.0 } else { 1.0 / (1.0 + i as f64 * 1e-4) }).collect();
    for chunk in (0..points).collect::<Vec<_>>().chunks(50_000) {
        let writes: Vec<Write<'_>> = chunk
            .iter()
            .map(|&i| Write::Scalar { key: "train.loss", step: i as u64, epoch: 1, wall, value: values[i] })
            .collect();
        store.write("r1", &writes).unwrap();
    }
    let file = dir.path().join("runs").join("r1").join("model.safetensors");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"weights").unwrap();
    let path = file.display().to_string();
    store.write("r1", &[Write::Artifact { kind: "model", path: &path, bytes: 7, checksum: None, wall }]).unwrap();
    store
        .write("r1", &[Write::Artifact { kind: "outside", path: "/etc/hostname", bytes: 1, checksum: None, wall }])
        .unwrap();
    (dir, Arc::new(store))
}

/// The real analyses live in the CLI (its browser tests use them); here, what the store holds.
fn analyses() -> Analyses {
    Analyses {
        diagnosis: Arc::new(|store, run| Ok(serde_json::json!({ "run_id": store.resolve(run)? }))),
        sweep_report: Arc::new(|store, sweep| Ok(serde_json::json!({ "sweep_id": store.get_sweep(sweep)?.sweep_id }))),
    }
}

/// Starts a server on a free loopback port; it stops with the test process.
fn serve(store: Arc<dyn RunStore>, root: &std::path::Path, token: Option<&str>) -> SocketAddr {
    let options = UiOptions { host: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, token: token.map(str::to_string) };
    let server = Server::bind(store, analyses(), root.to_path_buf(), &options).unwrap();
    let address = server.address();
    std::thread::spawn(move || server.run(std::future::pending()));
    address
}

/// Sends one raw request; returns the status code, the headers (lower-cased) and the body.
fn send(address: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn get(address: SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    let port = address.port();
    send(address, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"))
}

fn post(address: SocketAddr, path: &str, content_type: &str, body: &str, extra: &str) -> (u16, String, String) {
    let port = address.port();
    send(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             {extra}Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The index of the artifact of `kind` in a run's detail.
fn index_of(detail: &Value, kind: &str) -> u64 {
    let artifacts = detail["artifacts"].as_array().unwrap();
    artifacts.iter().find(|a| a["kind"] == kind).and_then(|a| a["index"].as_u64()).unwrap()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn runs_series_notes_and_tags_through_the_api() {
    let (dir, store) = store(2_000, 1_500);
    let address = serve(Arc::clone(&store), dir.path(), None);

    let (status, head, body) = get(address, "/api/runs?sort=params.lr&limit=1", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("content-security-policy: default-src 'none'")
            && head.contains("x-content-type-options: nosniff")
    );
    let page = json(&body);
    assert_eq!((page["total"].as_u64(), page["runs"].as_array().unwrap().len()), (Some(2), 1));
    assert_eq!(page["runs"][0]["run_id"], "r1");
    let (status, _, body) = get(address, "/api/runs?filter=params.lr%20%3E%200.05", "");
    assert_eq!((status, json(&body)["runs"][0]["run_id"].clone()), (200, Value::from("r2")));
    let (status, _, body) = get(address, "/api/runs?filter=params.lr%20%3E%3E", "");
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = get(address, "/api/runs/r1", "");
    assert_eq!(status, 200, "{body}");
    let detail = json(&body);
    assert_eq!(detail["series"]["train.loss"], 2000);
    let model = index_of(&detail, "model");
    assert_eq!(get(address, "/api/runs/nope", "").0, 404);

    let (_, _, body) = get(address, "/api/runs/r1/series?key=train.loss&buckets=50", "");
    let series = json(&body);
    assert_eq!(series["total"], 2000);
    assert!(series["points"].as_array().unwrap().len() <= 200);
    assert!(series["points"].as_array().unwrap().iter().any(|p| p[0] == 1500.0 && p[1] == 50.0), "{series}");

    let (status, _, body) =
        post(address, "/api/runs/r1/notes", "application/json", r#"{"markdown":"looks **good**"}"#, "");
    assert_eq!(status, 201, "{body}");
    assert!(store.get_run("r1").unwrap().notes.iter().any(|n| n.body == "looks **good**"), "the note is in the store");
    let (status, _, body) =
        post(address, "/api/runs/r2/tags", "application/json", r#"{"key":"stage","value":"baseline"}"#, "");
    assert_eq!(status, 204, "{body}");
    assert_eq!(store.get_run("r2").unwrap().row.tags["stage"], "baseline");
    // The listing the table pages through is read again after a write.
    let (status, _, body) = get(address, "/api/runs?filter=tags.stage%20%3D%20%27baseline%27", "");
    assert_eq!((status, json(&body)["runs"][0]["run_id"].clone()), (200, Value::from("r2")), "{body}");

    let (status, _, body) = get(address, &format!("/api/runs/r1/artifacts/{model}"), "");
    assert_eq!((status, body.as_str()), (200, "weights"));
    let (_, _, openapi) = get(address, "/api/openapi.json", "");
    assert_eq!(json(&openapi)["openapi"], "3.1.0");

    // Only the columns asked for, and how many runs each group has.
    let (_, _, body) = get(address, "/api/runs?fields=params.lr,metrics.train.loss&group=params.model&limit=5", "");
    let page = json(&body);
    let first = &page["runs"][0];
    assert_eq!(first["params"].as_object().unwrap().keys().collect::<Vec<_>>(), ["lr"]);
    assert_eq!(first["metrics"]["train.loss"]["max"], 50.0, "{first}");
    assert_eq!(page["groups"], serde_json::json!([{ "value": "mlp", "count": 2 }]));
    let (_, _, body) = get(address, "/api/keys", "");
    assert!(json(&body)["params"].as_array().unwrap().iter().any(|k| k == "lr"), "{body}");
    // The page and its scripts, from the binary.
    let (status, head, body) = get(address, "/", "");
    assert!(status == 200 && head.contains("content-type: text/html") && body.contains("/assets/app.js"), "{body}");
    let (status, head, _) = get(address, "/assets/app.js", "");
    assert!(status == 200 && head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(get(address, "/assets/..%2fCargo.toml", "").0, 404);
}

#[test]
fn sweeps_are_listed_reported_and_stopped() {
    let (dir, store) = store(10, 5);
    let sweep = regimen_store::NewSweep {
        sweep_id: "sw1".into(),
        name: "lr-search".into(),
        spec: serde_json::json!({}),
        parent: None,
        created_at: Timestamp(0),
    };
    store.create_sweep(&sweep).unwrap();
    let claim = regimen_store::Claim::New { number: 0, params: serde_json::json!({ "lr": 0.1 }), target: 3 };
    store.claim_trial("sw1", &claim, "w1", std::time::Duration::from_secs(60)).unwrap();
    let address = serve(Arc::clone(&store), dir.path(), None);
    let (_, _, body) = get(address, "/api/sweeps", "");
    assert_eq!(json(&body)["sweeps"][0]["name"], "lr-search");
    let (status, _, body) = get(address, "/api/sweeps/lr-search", "");
    assert_eq!((status, json(&body)["sweep_id"].clone()), (200, Value::from("sw1")));
    assert_eq!(get(address, "/api/sweeps/nope", "").0, 404);
    assert_eq!(post(address, "/api/sweeps/sw1/trials/0/stop", "application/json", "{}", "").0, 204);
    assert_eq!(post(address, "/api/sweeps/sw1/trials/0/stop", "application/json", "{}", "").0, 409, "already ended");
    let (trials, _) = store.trials_since("sw1", 0).unwrap();
    assert_eq!(trials[0].state, regimen_store::TrialState::Pruned);
    assert_eq!(post(address, "/api/sweeps/sw1/stop", "application/json", "{}", "").0, 204);
    assert_eq!(store.get_sweep("sw1").unwrap().status, regimen_store::SweepStatus::Stopped);
    assert_eq!(post(address, "/api/sweeps/sw1/stop", "text/plain", "{}", "").0, 415);
}

#[test]
fn a_spike_in_a_million_points_is_in_every_zoomed_response() {
    let spike = 777_777;
    let (dir, store) = store(1_000_000, spike);
    let address = serve(store, dir.path(), None);
    // From the whole series, where stretches come back as their block summaries, to 200 steps.
    let ranges =
        ["", "&from=0&to=999999", "&from=500000&to=900000", "&from=770000&to=790000", "&from=777700&to=777900"];
    for range in ranges {
        for buckets in [20, 400, 2000] {
            let (status, _, body) =
                get(address, &format!("/api/runs/r1/series?key=train.loss{range}&buckets={buckets}"), "");
            assert_eq!(status, 200, "{body}");
            let series = json(&body);
            let points = series["points"].as_array().unwrap();
            assert!(points.len() <= 4 * buckets + 8, "{} points for {buckets} buckets", points.len());
            assert!(
                points.iter().any(|p| p[0] == spike as f64 && p[1] == 50.0),
                "spike missing in range `{range}` with {buckets} buckets"
            );
            let (from, to) = (series["from"].as_f64().unwrap(), series["to"].as_f64().unwrap());
            assert_eq!(series["total"].as_f64().unwrap(), to - from + 1.0, "every point in `{range}` counted");
        }
    }
}

#[test]
fn the_guards_refuse_what_a_hostile_page_or_network_would_send() {
    let (dir, store) = store(10, 5);
    let refused = Server::bind(
        Arc::clone(&store),
        analyses(),
        dir.path().to_path_buf(),
        &UiOptions { host: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: 0, token: None },
    );
    assert!(matches!(refused, Err(UiError::TokenRequired(_))), "a non-loopback bind without a token starts");

    let address = serve(Arc::clone(&store), dir.path(), None);
    let port = address.port();
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1.
    let (status, _, _) =
        send(address, "GET /api/runs HTTP/1.1\r\nHost: evil.example:7070\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 403);
    // A cross-origin write, and a `text/plain` one (a "simple" request a browser sends anywhere).
    let note = r#"{"markdown":"pwned"}"#;
    let origin = "Origin: http://evil.example\r\n";
    assert_eq!(post(address, "/api/runs/r1/notes", "application/json", note, origin).0, 403);
    assert_eq!(post(address, "/api/runs/r1/notes", "text/plain", note, "").0, 415);
    let own = format!("Origin: http://127.0.0.1:{port}\r\n");
    assert_eq!(post(address, "/api/runs/r1/notes", "application/json", note, &own).0, 201);
    assert_eq!(store.get_run("r1").unwrap().notes.len(), 1, "only the same-origin note was written");
    // A body over the limit.
    let big = format!(r#"{{"markdown":"{}"}}"#, "x".repeat(100_000));
    assert_eq!(post(address, "/api/runs/r1/notes", "application/json", &big, "").0, 413);
    // Traversals: never a file, whatever the encoding; and a recorded path outside the store.
    let outside = index_of(&json(&get(address, "/api/runs/r1", "").2), "outside");
    let outside = format!("/api/runs/r1/artifacts/{outside}");
    for path in [
        "/api/runs/r1/artifacts/../../../../etc/passwd",
        "/api/runs/r1/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/runs/r1/artifacts/%252e%252e%252fetc%252fpasswd",
        "/api/runs/r1/artifacts//etc/passwd",
        "/api/runs/r1/artifacts/%2Fetc%2Fpasswd",
        "/../../etc/passwd",
        outside.as_str(),
        "/api/runs/r1/artifacts/99",
    ] {
        let (status, _, body) = get(address, path, "");
        assert!(matches!(status, 400 | 404), "{path}: {status} {body}");
        assert!(!body.contains("root:"), "{path} leaked a file");
    }

    let guarded = serve(Arc::clone(&store), dir.path(), Some("s3cret"));
    assert_eq!(get(guarded, "/api/runs", "").0, 401);
    assert_eq!(get(guarded, "/api/runs", "Authorization: Bearer wrong\r\n").0, 401);
    assert_eq!(get(guarded, "/api/runs", "Authorization: Bearer s3cret\r\n").0, 200);
}

#[test]
fn three_seeds_group_into_a_mean_with_a_band() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let wall = Timestamp(1_714_564_800_000);
    // Three seeds of one setup and one run of another: `seed` is in the config, so in the params.
    for (id, seed, lr) in [("s1", 1, 0.01), ("s2", 2, 0.01), ("s3", 3, 0.01), ("other", 1, 0.1)] {
        let mut run = sample_run(id, lr, "mlp");
        run.params["seed"] = Value::from(seed);
        store.write(id, &[Write::Start(&run)]).unwrap();
        let writes: Vec<Write<'_>> = (0..10)
            .map(|step| Write::Scalar { key: "val.loss", step, epoch: 1, wall, value: (seed * 10 + step) as f64 })
            .collect();
        store.write(id, &writes).unwrap();
    }
    let address = serve(Arc::new(store), dir.path(), None);
    let (status, _, body) = get(address, "/api/compare?runs=s1,s2,s3,other&key=val.loss&group=params.seed", "");
    assert_eq!(status, 200, "{body}");
    let lines = json(&body)["lines"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let seeds = lines.iter().find(|l| l["runs"].as_array().unwrap().len() == 3).unwrap();
    // At step 4 the seeds have 14, 24 and 34: mean 24, band 14 to 34.
    let at = |series: &Value| series["points"].as_array().unwrap().iter().find(|p| p[0] == 4.0).unwrap()[1].clone();
    assert_eq!((at(&seeds["mean"]), at(&seeds["low"]), at(&seeds["high"])), (24.0.into(), 14.0.into(), 34.0.into()));
    let single = lines.iter().find(|l| l["runs"] == serde_json::json!(["other"])).unwrap();
    assert!(single["low"].is_null(), "one run has no band");
    let (_, _, body) = get(address, "/api/compare?runs=s1,s2&key=val.loss", "");
    assert_eq!(json(&body)["lines"].as_array().unwrap().len(), 2, "without group, one line per run");
}

/// Reads from `stream` until the text read so far holds `marker` and the end of the event it is
/// in (a blank line); returns that text.
fn read_until(stream: &mut TcpStream, seen: &mut String, marker: &str) -> String {
    let mut buffer = [0u8; 4096];
    let complete = |seen: &str| seen.find(marker).and_then(|at| seen[at..].find("\n\n").map(|end| at + end + 2));
    while complete(seen).is_none() {
        let n = stream.read(&mut buffer).unwrap_or_else(|e| panic!("waiting for {marker:?}: {e}; got {seen}"));
        assert!(n > 0, "the stream closed before {marker:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let at = complete(seen).unwrap();
    let text = seen[..at].to_string();
    seen.replace_range(..at, "");
    text
}

#[test]
fn a_live_run_streams_its_new_points_and_its_end_resumably() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let wall = Timestamp(1_714_564_800_000);
    let scalar = |step: u64| Write::Scalar { key: "train.loss", step, epoch: 1, wall, value: 1.0 / (step + 1) as f64 };
    // Started now, so that the store does not take its heartbeat for a crashed run's.
    let run = regimen_store::NewRun { started_at: Timestamp::now(), ..sample_run("r1", 0.1, "mlp") };
    store.write("r1", &[Write::Start(&run)]).unwrap();
    store.write("r1", &[scalar(0), scalar(1), scalar(2)]).unwrap();
    let address = serve(Arc::clone(&store), dir.path(), None);
    let open = |extra: &str| {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let port = address.port();
        let request = format!(
            "GET /api/runs/r1/stream?keys=train.loss HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Accept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream
    };
    let mut live = open("");
    let mut seen = String::new();
    let first = read_until(&mut live, &mut seen, "id: 2");
    assert!(first.contains("text/event-stream") && first.contains("event: points"), "{first}");
    // Points written while the page watches arrive as one more event.
    store.write("r1", &[scalar(3), scalar(4)]).unwrap();
    let next = read_until(&mut live, &mut seen, "id: 4");
    assert!(next.contains("[3,0.25]") && next.contains("[4,0.2]") && !next.contains("[2,"), "{next}");
    store.write("r1", &[Write::End { status: regimen_store::RunState::Finished, reason: None, at: wall }]).unwrap();
    let end = read_until(&mut live, &mut seen, "event: end");
    assert!(end.contains("\"status\":\"finished\""), "{end}");

    // A browser reconnecting with the last id it saw gets only what came after.
    let mut again = open("Last-Event-ID: 3\r\n");
    let mut seen = String::new();
    let resumed = read_until(&mut again, &mut seen, "finished");
    assert!(resumed.contains("[4,0.2]") && !resumed.contains("[3,"), "{resumed}");
    assert_eq!(get(address, "/api/runs/nope/stream?keys=train.loss", "").0, 404);
}
