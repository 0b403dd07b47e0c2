//! The JSON API under `/api/`, described by [`OPENAPI`].

use std::path::Path;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query as UrlQuery, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use regimen_store::{Query, RunDetail, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::State;
use crate::compare::{compare, x_of};
use crate::downsample::downsample;
use crate::guard::{error, guard};

/// The largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;

/// Most runs one page of `/api/runs` returns.
const MAX_PAGE: usize = 1000;

/// The OpenAPI 3.1 description of this API.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

pub(crate) fn router(state: State) -> axum::Router {
    axum::Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/runs", get(runs))
        .route("/api/runs/{run}", get(run))
        .route("/api/runs/{run}/series", get(series))
        .route("/api/runs/{run}/notes", post(add_note))
        .route("/api/runs/{run}/tags", post(set_tag))
        .route("/api/runs/{run}/artifacts/{index}", get(artifact))
        .route("/api/compare", get(compare_runs))
        .route("/api/runs/{run}/stream", get(stream))
        .route("/api/runs/{run}/diagnosis", get(diagnosis))
        .route("/api/keys", get(keys))
        .route("/api/sweeps", get(sweeps))
        .route("/api/sweeps/{sweep}", get(sweep))
        .route("/api/sweeps/{sweep}/stop", post(stop_sweep))
        .route("/api/sweeps/{sweep}/trials/{number}/stop", post(stop_trial))
        .route("/", get(crate::assets::index))
        .route("/assets/{file}", get(crate::assets::asset))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see /api/openapi.json") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Runs a blocking store call off the async threads and maps its error to a response.
async fn blocking<T: Send + 'static>(
    state: &State,
    call: impl FnOnce(&State) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let state = state.clone();
    match tokio::task::spawn_blocking(move || call(&state)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(store_error)) => Err(store_response(&store_error)),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the request failed")),
    }
}

fn store_response(store_error: &StoreError) -> Response {
    let status = match store_error {
        StoreError::RunNotFound { .. } | StoreError::SweepNotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::AmbiguousRun { .. } | StoreError::Query(_) | StoreError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &store_error.to_string())
}

async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `?filter=&sort=&offset=&limit=&fields=&group=` of `/api/runs`.
#[derive(Debug, Deserialize)]
struct RunsQuery {
    filter: Option<String>,
    sort: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    fields: Option<String>,
    group: Option<String>,
}

/// One page of runs, filtered and sorted with `regimen runs`' language. `fields` (comma-separated
/// `params.KEY` and `metrics.KEY`) keeps only those parameters and metrics of each run, so that a
/// table asks for the columns it shows; `group` (`params.KEY` or `tags.KEY`) adds how many runs
/// of the whole filtered list have each value, in order of first appearance.
async fn runs(Shared(state): Shared<State>, UrlQuery(query): UrlQuery<RunsQuery>) -> Response {
    let parsed = match Query::parse(query.filter.as_deref(), query.sort.as_deref(), None) {
        Ok(parsed) => parsed,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem.to_string()),
    };
    let limit = query.limit.unwrap_or(100).min(MAX_PAGE);
    let offset = query.offset;
    let all = match blocking(&state, all_runs).await {
        Ok(all) => all,
        Err(response) => return response,
    };
    let rows = match parsed.select(&all) {
        Ok(rows) => rows,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem.to_string()),
    };
    let fields: Option<Vec<&str>> = query.fields.as_deref().map(|f| f.split(',').map(str::trim).collect());
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|row| {
            let mut value = regimen_export::run_json(row);
            if let Some(fields) = &fields {
                for (section, prefix) in [("params", "params."), ("metrics", "metrics.")] {
                    if let Some(map) = value[section].as_object_mut() {
                        map.retain(|key, _| fields.iter().any(|f| f.strip_prefix(prefix) == Some(key.as_str())));
                    }
                }
            }
            value
        })
        .collect();
    let mut body = json!({ "total": rows.len(), "offset": offset, "runs": page });
    if let Some(group) = &query.group {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for row in &rows {
            let value = group_value(row, group);
            match index.get(&value) {
                Some(&at) => counts[at].1 += 1,
                None => {
                    index.insert(value.clone(), counts.len());
                    counts.push((value, 1));
                }
            }
        }
        body["groups"] = counts.into_iter().map(|(value, count)| json!({ "value": value, "count": count })).collect();
    }
    Json(body).into_response()
}

/// Every run of the store, as last listed.
pub(crate) struct Listing {
    /// [`regimen_store::RunStore::changes`] when it was read.
    changes: u64,
    /// When it was read.
    at: std::time::Instant,
    rows: std::sync::Arc<Vec<regimen_store::RunRow>>,
}

/// How long a listing is reused even while other processes write (a run training logs every
/// second): the table may lag the store by this much, the run pages stream live.
const LISTING_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Every run of the store: the last listing while the store reports no write since, or it is
/// under a second old (a table scrolling through ten thousand runs asks for a page at a time, and
/// each page is cut from it), else a new one. Crash detection runs first, as a listing would run
/// it; it writes, and so refreshes the listing, only when a run stopped sending heartbeats. One
/// request lists at a time; the others wait for its result instead of listing too.
pub(crate) fn all_runs(state: &State) -> Result<std::sync::Arc<Vec<regimen_store::RunRow>>, StoreError> {
    use regimen_store::Clock as _;
    let mut cached = state.listing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    state.store.reconcile(regimen_store::SystemClock.now(), regimen_store::CRASH_AFTER)?;
    let changes = state.store.changes()?;
    if let Some(listing) = cached.as_ref().filter(|l| l.changes == changes || l.at.elapsed() < LISTING_FRESH) {
        return Ok(std::sync::Arc::clone(&listing.rows));
    }
    let rows = std::sync::Arc::new(state.store.list_runs(&Query::default())?);
    let changes = state.store.changes()?;
    *cached = Some(Listing { changes, at: std::time::Instant::now(), rows: std::sync::Arc::clone(&rows) });
    Ok(rows)
}

/// Drops the listing after this server wrote, so that the next page shows the write.
fn forget_listing(state: &State) {
    *state.listing.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// The value a run has for `params.KEY` or `tags.KEY`, as text ("" when it has none).
fn group_value(row: &regimen_store::RunRow, field: &str) -> String {
    if let Some(key) = field.strip_prefix("params.") {
        return row.params.get(key).map(ToString::to_string).unwrap_or_default();
    }
    field.strip_prefix("tags.").and_then(|key| row.tags.get(key).cloned()).unwrap_or_default()
}

/// Every parameter, metric and tag key of the store's runs, for choosing columns.
async fn keys(Shared(state): Shared<State>) -> Response {
    match blocking(&state, all_runs).await {
        Ok(rows) => {
            let mut params = std::collections::BTreeSet::new();
            let mut metrics = std::collections::BTreeSet::new();
            let mut tags = std::collections::BTreeSet::new();
            for row in rows.iter() {
                params.extend(row.params.keys());
                metrics.extend(row.metrics.keys());
                tags.extend(row.tags.keys());
            }
            Json(json!({ "params": params, "metrics": metrics, "tags": tags })).into_response()
        }
        Err(response) => response,
    }
}

/// Everything about a run but its points: those come from `/series`.
async fn run(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>) -> Response {
    match blocking(&state, move |s| s.store.get_run(&id)).await {
        Ok(detail) => Json(detail_json(&detail)).into_response(),
        Err(response) => response,
    }
}

fn detail_json(detail: &RunDetail) -> Value {
    let provenance = &detail.provenance;
    json!({
        "run": regimen_export::run_json(&detail.row),
        "heartbeat_at": detail.heartbeat_at.to_string(),
        "seed": detail.seed,
        "task": detail.task,
        "config": detail.config,
        "dataset": detail.dataset,
        "provenance": provenance,
        "environment": detail.environment,
        "notes": detail.notes.iter().map(|n| json!({
            "created_at": n.created_at.to_string(), "kind": n.kind.as_str(), "body": n.body,
        })).collect::<Vec<_>>(),
        "artifacts": detail.artifacts.iter().enumerate().map(|(index, a)| json!({
            "index": index, "kind": a.kind, "bytes": a.bytes, "checksum": a.checksum,
        })).collect::<Vec<_>>(),
        "series": detail.series.iter().map(|(key, points)| (key.clone(), json!(points.len()))).collect::<serde_json::Map<_, _>>(),
        "reports": detail.reports.iter().map(|r| json!({
            "split": r.split, "step": r.step, "epoch": r.epoch, "wall": r.wall.to_string(), "body": r.body,
        })).collect::<Vec<_>>(),
    })
}

/// `?key=&x=step|epoch|wall&from=&to=&buckets=&smooth=` of `/api/runs/{run}/series`.
#[derive(Debug, Deserialize)]
struct SeriesQuery {
    key: String,
    x: Option<String>,
    from: Option<f64>,
    to: Option<f64>,
    buckets: Option<usize>,
    smooth: Option<f64>,
}

/// One series over the visible range, downsampled so that every extreme stays.
async fn series(
    Shared(state): Shared<State>,
    UrlPath(id): UrlPath<String>,
    UrlQuery(query): UrlQuery<SeriesQuery>,
) -> Response {
    let x = query.x.clone().unwrap_or_else(|| "step".into());
    if !matches!(x.as_str(), "step" | "epoch" | "wall") {
        return error(StatusCode::BAD_REQUEST, "x must be step, epoch or wall");
    }
    let key = query.key.clone();
    let buckets = query.buckets.unwrap_or(1000).clamp(1, 10_000);
    let (from, to) = (query.from, query.to);
    let smooth = query.smooth.filter(|w| *w > 0.0);
    if smooth.is_some_and(|w| w >= 1.0 || w.is_nan()) {
        return error(StatusCode::BAD_REQUEST, "smooth must be a weight in [0, 1), e.g. 0.6");
    }
    let read = blocking(&state, move |s| {
        // Smoothing reads every point: an average of extremes would be wrong.
        if x != "step" || smooth.is_some() {
            let points = s.store.series(&id, &key)?;
            let xy: Vec<(f64, f64)> = points.iter().map(|p| (x_of(p, &x), p.value)).collect();
            return Ok((x, xy, None));
        }
        // Steps: only the blocks in range are read, and a stretch narrower than a bucket as its
        // extremes. An open end is found from the coarsest read, which is block summaries only.
        let (low, high) = match (from, to) {
            (Some(from), Some(to)) => (from.max(0.0) as u64, to.max(0.0) as u64),
            _ => {
                let coarse = s.store.series_range(&id, &key, 0, u64::MAX, u64::MAX)?;
                let first = coarse.points.first().map_or(0, |p| p.step);
                let last = coarse.points.last().map_or(0, |p| p.step);
                (from.map_or(first, |f| f.max(0.0) as u64), to.map_or(last, |t| t.max(0.0) as u64))
            }
        };
        let span = high.saturating_sub(low) / buckets as u64;
        let view = s.store.series_range(&id, &key, low, high, span)?;
        let xy: Vec<(f64, f64)> = view.points.iter().map(|p| (p.step as f64, p.value)).collect();
        Ok((x, xy, Some((low as f64, high as f64, view.total))))
    })
    .await;
    let (x, xy, range) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let (from, to) = match range {
        Some((low, high, _)) => (low, high),
        None => (from.or(xy.first().map(|p| p.0)).unwrap_or(0.0), to.or(xy.last().map(|p| p.0)).unwrap_or(0.0)),
    };
    let mut down = downsample(&xy, from, to, buckets);
    if let Some((_, _, total)) = range {
        down.total = usize::try_from(total).unwrap_or(usize::MAX);
    }
    let mut body = json!({ "key": query.key, "x": x, "from": from, "to": to, "total": down.total, "points": down.points, "bands": down.bands });
    if let Some(weight) = smooth {
        body["smoothed"] = json!(downsample(&debiased_ema(&xy, weight), from, to, buckets).points);
    }
    Json(body).into_response()
}

/// TensorBoard's smoothing: an exponential moving average with `weight` on the past, divided by
/// `1 - weight^n` so that the first points are not pulled towards zero. Over every point of the
/// series (not the downsampled ones); a NaN stays NaN and does not enter the average.
fn debiased_ema(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let (mut average, mut count) = (0.0, 0i32);
    points
        .iter()
        .map(|&(x, y)| {
            if !y.is_finite() {
                return (x, y);
            }
            average = average * weight + (1.0 - weight) * y;
            count += 1;
            (x, average / (1.0 - weight.powi(count)))
        })
        .collect()
}

/// How often a live stream looks for writes: one cheap `changes()` call per tick.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `?keys=a,b` of `/api/runs/{run}/stream`.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    keys: String,
}

/// A live run as server-sent events: `points` events with each key's new points (`{key: [[step,
/// value]]}`, the event id the last step sent, so that a reconnecting browser's `Last-Event-ID`
/// resumes after it), polled only when the store reports a write; `end` with the run's status
/// once it stopped running.
async fn stream(
    Shared(state): Shared<State>,
    UrlPath(id): UrlPath<String>,
    UrlQuery(query): UrlQuery<StreamQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let keys: Vec<String> = query.keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
    if keys.is_empty() || keys.len() > 64 {
        return error(StatusCode::BAD_REQUEST, "keys must name 1 to 64 metric keys, comma-separated");
    }
    let after: Option<u64> = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    // Fail now, with a status, when the run does not exist; the full id also keys the status query.
    let probe = id.clone();
    let id = match blocking(&state, move |s| s.store.resolve(&probe)).await {
        Ok(full) => full,
        Err(response) => return response,
    };
    let only = match Query::parse(Some(&format!("run_id = '{}'", id.replace('\'', ""))), None, Some(1)) {
        Ok(query) => query,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem.to_string()),
    };
    struct Live {
        state: State,
        id: String,
        only: Query,
        keys: Vec<String>,
        after: Option<u64>,
        seen: Option<u64>,
        ended: bool,
    }
    let live = Live { state, id, only, keys, after, seen: None, ended: false };
    let events = futures_util::stream::unfold(live, |mut live| async move {
        if live.ended {
            return None;
        }
        loop {
            let (id, keys, after, seen) = (live.id.clone(), live.keys.clone(), live.after, live.seen);
            let only = live.only.clone();
            let read = blocking(&live.state, move |s| {
                let changes = s.store.changes()?;
                if seen == Some(changes) {
                    return Ok((changes, None));
                }
                let status = s.store.list_runs(&only)?.first().map_or(regimen_store::RunState::Running, |r| r.status);
                let mut fresh = serde_json::Map::new();
                let mut last = after;
                for key in &keys {
                    let points: Vec<(u64, Option<f64>)> = s
                        .store
                        .series(&id, key)?
                        .iter()
                        .filter(|p| after.is_none_or(|a| p.step > a))
                        .map(|p| (p.step, (!p.value.is_nan()).then_some(p.value)))
                        .collect();
                    if let Some(step) = points.last().map(|p| p.0) {
                        last = Some(last.map_or(step, |l| l.max(step)));
                    }
                    fresh.insert(key.clone(), json!(points));
                }
                Ok((changes, Some((status, fresh, last))))
            })
            .await;
            match read {
                Err(_) => return None,
                Ok((changes, None)) => {
                    live.seen = Some(changes);
                    tokio::time::sleep(POLL).await;
                }
                Ok((changes, Some((status, fresh, last)))) => {
                    live.seen = Some(changes);
                    let has_points = fresh.values().any(|v| v.as_array().is_some_and(|a| !a.is_empty()));
                    if status != regimen_store::RunState::Running {
                        live.ended = true;
                        let mut event = Event::default()
                            .event("end")
                            .data(json!({ "status": status.as_str(), "points": fresh }).to_string());
                        if let Some(step) = last {
                            event = event.id(step.to_string());
                        }
                        return Some((Ok::<Event, std::convert::Infallible>(event), live));
                    }
                    if has_points {
                        live.after = last;
                        let event = Event::default()
                            .event("points")
                            .id(last.map_or_else(String::new, |s| s.to_string()))
                            .data(Value::Object(fresh).to_string());
                        return Some((Ok(event), live));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Most runs one comparison draws.
const MAX_COMPARED: usize = 200;

/// `?runs=a,b,c&key=&x=&group=&from=&to=&buckets=` of `/api/compare`.
#[derive(Debug, Deserialize)]
struct CompareQuery {
    runs: String,
    key: String,
    x: Option<String>,
    group: Option<String>,
    from: Option<f64>,
    to: Option<f64>,
    buckets: Option<usize>,
}

/// One metric of several runs; with `group=PARAM`, runs that differ only in that parameter become
/// one line: their mean, with the lowest and highest member as a band.
async fn compare_runs(Shared(state): Shared<State>, UrlQuery(query): UrlQuery<CompareQuery>) -> Response {
    let ids: Vec<String> = query.runs.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if ids.is_empty() || ids.len() > MAX_COMPARED {
        return error(StatusCode::BAD_REQUEST, "runs must name 1 to 200 runs, comma-separated");
    }
    let axis = query.x.clone().unwrap_or_else(|| "step".into());
    if !matches!(axis.as_str(), "step" | "epoch" | "wall") {
        return error(StatusCode::BAD_REQUEST, "x must be step, epoch or wall");
    }
    let key = query.key.clone();
    let loaded = blocking(&state, move |s| {
        ids.iter()
            .map(|id| Ok((s.store.get_run(id)?.row, s.store.series(id, &key)?)))
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .await;
    let runs = match loaded {
        Ok(runs) => runs,
        Err(response) => return response,
    };
    let group = query.group.as_deref().map(|g| g.strip_prefix("params.").unwrap_or(g));
    let buckets = query.buckets.unwrap_or(1000).clamp(1, 10_000);
    let lines = compare(&runs, group, &axis, (query.from, query.to), buckets);
    Json(json!({ "key": query.key, "x": axis, "group": group, "lines": lines })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    markdown: String,
}

async fn add_note(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>, Json(note): Json<NewNote>) -> Response {
    if note.markdown.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "the note is empty");
    }
    let added = blocking(&state, move |s| {
        s.store.add_note(&id, &note.markdown)?;
        forget_listing(s);
        Ok(())
    });
    match added.await {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTag {
    key: String,
    value: String,
}

async fn set_tag(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>, Json(tag): Json<NewTag>) -> Response {
    if tag.key.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "the tag has no key");
    }
    let set = blocking(&state, move |s| {
        s.store.set_tag(&id, &tag.key, &tag.value)?;
        forget_listing(s);
        Ok(())
    });
    match set.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// A run's recorded artifact, by its index in the run's list: never a path from the request. The
/// recorded path must still resolve inside the store. A checkpoint (a folder) is served as its
/// weights file; a picture with its image type.
async fn artifact(Shared(state): Shared<State>, UrlPath((id, index)): UrlPath<(String, String)>) -> Response {
    let Ok(index) = index.parse::<usize>() else {
        return error(StatusCode::BAD_REQUEST, "an artifact is named by its index in the run's list");
    };
    let detail = match blocking(&state, move |s| s.store.get_run(&id)).await {
        Ok(detail) => detail,
        Err(response) => return response,
    };
    let Some(record) = detail.artifacts.get(index) else {
        return error(StatusCode::NOT_FOUND, "no such artifact");
    };
    let root = state.root.clone();
    let path = Path::new(&record.path).to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let file = if path.is_dir() { path.join(WEIGHTS_FILE) } else { path };
        let file = inside(&root, &file)?;
        let png = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        std::fs::read(&file).ok().map(|bytes| (bytes, png))
    });
    match read.await {
        Ok(Some((bytes, png))) => {
            let mut response = bytes.into_response();
            let kind = if png { "image/png" } else { "application/octet-stream" };
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            response
        }
        _ => error(StatusCode::NOT_FOUND, "the artifact's file is gone or outside the store"),
    }
}

/// The weights file in a checkpoint folder, the part of a checkpoint worth downloading.
const WEIGHTS_FILE: &str = "model.safetensors";

/// `path` resolved, when it is a file inside `root` (symbolic links followed on both).
fn inside(root: &Path, path: &Path) -> Option<std::path::PathBuf> {
    let root = root.canonicalize().ok()?;
    let path = path.canonicalize().ok()?;
    (path.starts_with(&root) && path.is_file()).then_some(path)
}

/// Runs an [`crate::Analysis`] off the async threads; a store error keeps its status.
async fn analysis(state: &State, which: fn(&crate::Analyses) -> &crate::Analysis, id: String) -> Response {
    let state = state.clone();
    let result = tokio::task::spawn_blocking(move || which(&state.analyses)(state.store.as_ref(), &id)).await;
    match result {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(problem)) => match problem.downcast_ref::<StoreError>() {
            Some(store_error) => store_response(store_error),
            None => error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{problem:#}")),
        },
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the request failed"),
    }
}

/// The run's diagnosis, as `regimen diagnose RUN --json` prints it.
async fn diagnosis(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>) -> Response {
    analysis(&state, |a| &a.diagnosis, id).await
}

/// Every sweep, newest first, with its trial counts.
async fn sweeps(Shared(state): Shared<State>) -> Response {
    match blocking(&state, |s| s.store.list_sweeps()).await {
        Ok(rows) => Json(json!({ "sweeps": rows })).into_response(),
        Err(response) => response,
    }
}

/// A sweep's report, as `regimen sweep report SWEEP --json` prints it.
async fn sweep(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>) -> Response {
    analysis(&state, |a| &a.sweep_report, id).await
}

/// Stops a sweep, as `regimen sweep stop` does: its running trials checkpoint and stop.
async fn stop_sweep(Shared(state): Shared<State>, UrlPath(id): UrlPath<String>, Json(_): Json<Value>) -> Response {
    let stopped = blocking(&state, move |s| {
        let row = s.store.get_sweep(&id)?;
        s.store.set_sweep_status(&row.sweep_id, regimen_store::SweepStatus::Stopped)
    });
    match stopped.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// Stops one trial: it ends pruned, and its worker stops training it at its next lease renewal.
async fn stop_trial(
    Shared(state): Shared<State>,
    UrlPath((id, number)): UrlPath<(String, u64)>,
    Json(_): Json<Value>,
) -> Response {
    let stopped = blocking(&state, move |s| {
        let row = s.store.get_sweep(&id)?;
        s.store.stop_trial(&row.sweep_id, number, "stopped from the dashboard")
    });
    match stopped.await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::CONFLICT, "the trial has already ended"),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::debiased_ema;

    #[test]
    fn smoothing_starts_at_the_first_value_and_skips_nan() {
        let smoothed = debiased_ema(&[(0.0, 4.0), (1.0, f64::NAN), (2.0, 0.0)], 0.5);
        assert_eq!(smoothed[0], (0.0, 4.0), "debiased: not pulled towards zero");
        assert!(smoothed[1].1.is_nan());
        // (0.5 * 2 + 0.5 * 0) / (1 - 0.25)
        assert!((smoothed[2].1 - 4.0 / 3.0).abs() < 1e-12);
    }
}
