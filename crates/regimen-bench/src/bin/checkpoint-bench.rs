//! Checkpoint save and load throughput against the disk's own sequential speed, measured in the
//! same run on the same folder (`cargo run --release -p regimen-bench --bin checkpoint-bench`).
//!
//! The model is an MLP 784-4096-4096-1024-10 (24.3M parameters, 97 MB of `f32` weights) after
//! one Adam step, so its checkpoint holds the weights and both Adam moments (about 290 MB), as a
//! real checkpoint does. Each repetition, interleaved so that drift in the disk's speed hits both
//! sides alike:
//!
//! - **disk write**: the same number of bytes written in 8 MiB chunks to one file and fsynced,
//!   the way `dd conv=fsync` measures a disk;
//! - **save**: what the training loop does at a checkpoint (`checkpoint::save`): stream the
//!   weights as safetensors tensor by tensor, then encode the optimizer as burnpack, while a helper
//!   thread writes each piece into a partial folder (starting its write-back at once) and another
//!   hashes it (BLAKE3); then fsync each file, rename and fsync the folder. Each timed write (this
//!   and the disk's) starts after `syncfs`, so neither pays for the deletions before it;
//! - **disk read (cold)**: the reference file read back after dropping it from the page cache
//!   (`posix_fadvise(DONTNEED)`, no root needed);
//! - **load (cold)**: what `--resume` does, from a cold cache: verify the manifest hashes, keeping
//!   the weights and optimizer state as they are read, then make the model's and the optimizer's
//!   tensors of those bytes (`Resumable::read`, `Resumable::restore`).
//!
//! Prints a table with the medians, the best of the repetitions (a shared virtual disk slows
//! some of them several-fold, on either side) and the ratios, and one JSON line per repetition
//! with `--json`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use clap::Parser;
use regimen_train::checkpoint::{self, Contents, Manifest};
use regimen_train::model::MlpConfig;
use regimen_train::optim::build_optimizer;
use regimen_train::{Network, TrainConfig};

/// Chunk of the reference sequential write and read.
const CHUNK: usize = 8 << 20;

#[derive(Parser)]
struct Args {
    /// Folder to write in; it must be on the disk to measure (not a tmpfs). Created if missing.
    #[arg(long, default_value = "bench/out/checkpoint")]
    dir: PathBuf,
    /// Interleaved repetitions; the table shows medians and the best.
    #[arg(long, default_value_t = 9)]
    repeat: usize,
    /// Hidden sizes of the MLP (the default makes a 97 MB model).
    #[arg(long, value_delimiter = ',', default_value = "4096,4096,1024")]
    hidden: Vec<usize>,
    /// Also print one JSON object per repetition.
    #[arg(long)]
    json: bool,
}

/// One repetition's timings, in seconds.
#[derive(Default, Clone, Copy)]
struct Timings {
    disk_write: f64,
    save: f64,
    encode_weights: f64,
    encode: f64,
    disk_read: f64,
    verify: f64,
    restore: f64,
    load: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    regimen_train::system::keep_freed_memory();
    std::fs::create_dir_all(&args.dir)?;
    let device = burn::tensor::Device::flex().autodiff();
    device.seed(7);
    let model = MlpConfig {
        inputs: 784,
        hidden: args.hidden.clone(),
        outputs: 10,
        activation: "relu".into(),
        dropout: 0.0,
        batch_norm: false,
    }
    .init(&device);
    let config = TrainConfig::default();
    let mut optimizer = build_optimizer(&config);
    // One Adam step so that the optimizer holds both moments for every parameter.
    let input = Tensor::<2>::random([32, 784], burn::tensor::Distribution::Default, &device);
    let loss = model.forward(input).powf_scalar(2.0).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optimizer.step(1e-3, model, grads);
    let parameters = model.num_params();

    let state = serde_json::to_vec(&config)?;
    let mut rows = Vec::with_capacity(args.repeat);
    let mut bytes = 0u64;
    for rep in 0..args.repeat {
        // Odd repetitions measure the disk first: whichever write follows the previous
        // repetition's deletions may find the freed memory slower to fill again.
        let disk_first = rep % 2 == 1;
        let (mut disk_write, mut disk_read) = (0.0, 0.0);
        if disk_first {
            (disk_write, disk_read) = reference(&args.dir, bytes)?;
        }
        settle(&args.dir)?;
        let started = Instant::now();
        let manifest = Manifest {
            format: 0,
            step: 1,
            epoch: 1,
            epoch_complete: true,
            monitor: "val.loss".into(),
            monitor_mode: None,
            monitor_value: Some(1.0),
            files: Default::default(),
        };
        let contents = Contents::of(&model, &optimizer, state.clone());
        let saved = checkpoint::save(&args.dir, &format!("bench-{rep}"), manifest, contents)?;
        let save = started.elapsed().as_secs_f64();
        // Encoding alone, for the breakdown (the save above overlaps it with writing).
        let encoding = Instant::now();
        drop(checkpoint::encode_weights(&model)?);
        let encode_weights = encoding.elapsed().as_secs_f64();
        drop(optimizer.into_bytes()?);
        let encode = encoding.elapsed().as_secs_f64();
        bytes = saved.bytes();
        if !disk_first {
            (disk_write, disk_read) = reference(&args.dir, bytes)?;
        }

        for file in std::fs::read_dir(&saved.dir)? {
            drop_from_cache(&file?.path())?;
        }
        let started = Instant::now();
        let resumable = checkpoint::Resumable::read(&saved.dir)?;
        let verify = started.elapsed().as_secs_f64();
        let fresh = MlpConfig {
            inputs: 784,
            hidden: args.hidden.clone(),
            outputs: 10,
            activation: "relu".into(),
            dropout: 0.0,
            batch_norm: false,
        }
        .init(&device);
        let restoring = Instant::now();
        let (loaded, _optimizer) = resumable.restore(fresh, build_optimizer(&config))?;
        let restore = restoring.elapsed().as_secs_f64();
        let load = verify + restore;
        assert_eq!(loaded.num_params(), parameters);
        std::fs::remove_dir_all(&saved.dir)?;

        let timings = Timings { disk_write, save, encode_weights, encode, disk_read, verify, restore, load };
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "checkpoint", "rep": rep, "bytes": bytes, "parameters": parameters,
                    "disk_write_s": disk_write, "save_s": save, "encode_weights_s": encode_weights, "encode_s": encode,
                    "disk_read_cold_s": disk_read, "verify_s": verify, "restore_s": restore, "load_cold_s": load,
                })
            );
        }
        rows.push(timings);
    }

    let median = |pick: fn(&Timings) -> f64| {
        let mut values: Vec<f64> = rows.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mb = bytes as f64 / 1e6;
    let rate = |seconds: f64| mb / seconds;
    let (disk_write, save, encode, disk_read, load) = (
        median(|t| t.disk_write),
        median(|t| t.save),
        median(|t| t.encode),
        median(|t| t.disk_read),
        median(|t| t.load),
    );
    let (encode_weights, verify, restore) = (median(|t| t.encode_weights), median(|t| t.verify), median(|t| t.restore));
    eprintln!(
        "checkpoint of an MLP with {:.1}M parameters ({:.0} MB of weights), {mb:.0} MB in all with Adam's state; folder {}; median of {}",
        parameters as f64 / 1e6,
        parameters as f64 * 4.0 / 1e6,
        args.dir.display(),
        args.repeat
    );
    let best = |pick: fn(&Timings) -> f64| rows.iter().map(pick).fold(f64::INFINITY, f64::min);
    let (best_write, best_save, best_read, best_load) =
        (best(|t| t.disk_write), best(|t| t.save), best(|t| t.disk_read), best(|t| t.load));
    println!("| operation | median s | MB/s | vs disk | best s | vs disk, best |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| disk sequential write + fsync | {disk_write:.3} | {:.0} | 1.00× | {best_write:.3} | 1.00× |",
        rate(disk_write)
    );
    println!(
        "| **checkpoint save** (encode, hash, write, fsync, rename; encoding alone takes {encode:.3} s: weights {encode_weights:.3} s, optimizer {:.3} s) | {save:.3} | {:.0} | **{:.2}×** | {best_save:.3} | **{:.2}×** |",
        encode - encode_weights,
        rate(save),
        disk_write / save,
        best_write / best_save
    );
    println!(
        "| disk sequential read (cold cache) | {disk_read:.3} | {:.0} | 1.00× | {best_read:.3} | 1.00× |",
        rate(disk_read)
    );
    println!(
        "| **checkpoint load** (cold cache: read and verify {verify:.3} s, then weights and optimizer state made from the bytes read {restore:.3} s) | {load:.3} | {:.0} | **{:.2}×** | {best_load:.3} | **{:.2}×** |",
        rate(load),
        disk_read / load,
        best_read / best_load
    );
    Ok(())
}

/// The disk's own speed: `bytes` written sequentially and synced, then read back from a cold
/// cache; returns the seconds of each.
fn reference(dir: &Path, bytes: u64) -> std::io::Result<(f64, f64)> {
    let path = dir.join("sequential.bin");
    settle(dir)?;
    let write = sequential_write(&path, bytes)?;
    let read = cold_read(&path)?;
    std::fs::remove_file(&path)?;
    Ok((write, read))
}

/// Writes `bytes` bytes in [`CHUNK`]s and fsyncs; returns the seconds it took.
fn sequential_write(path: &Path, bytes: u64) -> std::io::Result<f64> {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let started = Instant::now();
    let mut file = File::create(path)?;
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        file.write_all(&chunk[..n])?;
        left -= n;
    }
    file.sync_all()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Reads `path` from a cold page cache in [`CHUNK`]s; returns the seconds it took.
fn cold_read(path: &Path) -> std::io::Result<f64> {
    drop_from_cache(path)?;
    let mut buffer = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut file = File::open(path)?;
    while file.read(&mut buffer)? > 0 {}
    Ok(started.elapsed().as_secs_f64())
}

/// Commits everything pending on the folder's filesystem (the deletions of the previous
/// repetition's files, and the discards they issue on a disk mounted with `discard`), so that each
/// timed write starts on a quiet disk instead of paying for what came before it.
fn settle(dir: &Path) -> std::io::Result<()> {
    let folder = File::open(dir)?;
    // SAFETY: a valid open descriptor; syncfs only flushes the filesystem it is on.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to drop a (synced) file's pages from the page cache.
fn drop_from_cache(path: &Path) -> std::io::Result<()> {
    let file = File::open(path)?;
    file.sync_all()?;
    // SAFETY: a valid open descriptor; the call only advises the kernel.
    let code = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if code != 0 {
        return Err(std::io::Error::from_raw_os_error(code));
    }
    Ok(())
}
