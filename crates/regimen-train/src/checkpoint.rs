//! Checkpoints: folders that hold everything needed to continue a run, written atomically and
//! verified on load.
//!
//! A checkpoint is a folder under the run's `checkpoints/`, named from a template
//! (`cnn-shapes-3f9a-lr1e-3-adam-wd0-ep12-step1500-valmacro_f10.9731`), holding:
//! - `model.safetensors`: the weights, readable by any safetensors tool;
//! - `optimizer.bpk`: the optimizer state (Burn's burnpack format);
//! - `state.json`: the rest of the training state ([`crate::state::TrainState`]);
//! - `manifest.json`: the step, epoch and monitored value, and each file's size and BLAKE3 hash.
//!
//! Writing goes to a hidden `.NAME.partial` folder; every file is synced, the manifest is written
//! last, then the folder is renamed into place and its parent synced. A crash at any instant
//! leaves either no new checkpoint or a complete one. Loading checks every size and hash, and the
//! caller falls back to the newest checkpoint that verifies, with a warning naming what was wrong.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use burn::optim::ModuleOptimizer;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use regimen_metrics::Mode;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::faults::{self, Fault};
use crate::model::Network;
use regimen_fs::FileError;

/// The weights file of a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer state file of a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// The training state file of a checkpoint.
pub const STATE_FILE: &str = "state.json";
/// The manifest of a checkpoint, written last.
pub const MANIFEST_FILE: &str = "manifest.json";
const MANIFEST_FORMAT: u32 = 1;

/// What a checkpoint folder holds, written last so that its presence means the rest is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this layout.
    pub format: u32,
    /// Optimizer steps taken when it was saved.
    pub step: u64,
    /// Epoch (1-based) it was saved in.
    pub epoch: u64,
    /// Whether it was saved at the end of `epoch` (otherwise mid-epoch).
    pub epoch_complete: bool,
    /// The monitored metric.
    pub monitor: String,
    /// Its direction; absent in checkpoints written before it was recorded.
    #[serde(default)]
    pub monitor_mode: Option<Mode>,
    /// Its value at this checkpoint, when it was evaluated here.
    pub monitor_value: Option<f64>,
    /// Each file: size and BLAKE3 hash.
    pub files: BTreeMap<String, FileEntry>,
}

/// Size and hash of one file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Bytes.
    pub bytes: u64,
    /// BLAKE3 hash, hex.
    pub blake3: String,
}

/// One piece of a checkpoint file's bytes, ready to be written and hashed by other threads.
pub type Encoded = Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>;

/// Takes the next piece of a file from an [`Encoder`]; an error means saving has stopped (the
/// writer failed, and [`save`] reports why) and the encoder should return it.
pub type Emit<'s> = dyn FnMut(Encoded) -> Result<(), String> + 's;

/// Produces one file's bytes when [`save`] asks for them, handing each piece on as soon as it
/// exists so that writing starts before encoding ends.
pub type Encoder<'a> = Box<dyn FnOnce(&mut Emit<'_>) -> Result<(), String> + 'a>;

/// An [`Encoder`] that may run on another thread.
pub type SendEncoder<'a> = Box<dyn FnOnce(&mut Emit<'_>) -> Result<(), String> + Send + 'a>;

/// An [`Encoder`] of bytes already at hand.
pub fn encoded(bytes: Vec<u8>) -> SendEncoder<'static> {
    Box::new(move |emit| emit(Box::new(bytes)))
}

/// The contents of a checkpoint to write, encoded on demand while the files are written in this
/// order.
pub struct Contents<'a> {
    /// Weights as safetensors bytes ([`stream_weights`]).
    pub model: Encoder<'a>,
    /// Optimizer state as burnpack bytes, encoded on a helper thread while the weights stream.
    pub optimizer: SendEncoder<'a>,
    /// Training state as JSON.
    pub state: Encoder<'a>,
}

impl<'a> Contents<'a> {
    /// What a training run checkpoints: `model`'s weights, `optimizer`'s state, and the training
    /// state already serialized.
    pub fn of<M: Network>(model: &'a M, optimizer: &'a ModuleOptimizer, state: Vec<u8>) -> Self {
        Contents {
            model: Box::new(move |emit| stream_weights(model, emit)),
            optimizer: Box::new(move |emit| emit(Box::new(optimizer.into_bytes().map_err(|e| e.to_string())?))),
            state: encoded(state),
        }
    }
}

/// A checkpoint on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Checkpoint {
    /// Total bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.manifest.files.values().map(|f| f.bytes).sum()
    }

    /// Its weights file.
    pub fn model_file(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }
}

/// Encodes a model's weights as safetensors bytes, byte-for-byte the same for the same weights
/// ([`stream_weights`] into one buffer).
pub fn encode_weights<M: Network>(model: &M) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    stream_weights(model, &mut |piece: Encoded| {
        bytes.extend_from_slice(&piece);
        Ok(())
    })?;
    Ok(bytes)
}

/// Streams a model's weights as a safetensors file: the header, then each tensor's bytes as soon
/// as they are copied out of the model, so that the disk starts writing at once and no copy of
/// the whole file is ever made.
///
/// The layout is the one the `safetensors` crate writes (tensors by descending dtype, then by
/// name) with Burn's metadata, but the header's keys are sorted: Burn builds it from a hash map,
/// whose order changes from process to process, and equal weights should give equal files (and
/// hashes).
pub fn stream_weights<M: Network>(model: &M, emit: &mut Emit<'_>) -> Result<(), String> {
    // Burn applies a training step's update of batch norm's running statistics at the next step
    // or when the model is switched to evaluation; reading the model does not. Apply it now, or
    // the file would hold the statistics of one step earlier, and a run resumed from it would not
    // be the run that was interrupted.
    drop(model.valid());
    let mut tensors = Vec::new();
    for tensor in model.collect(None, None, false) {
        let dtype = safetensors_dtype(tensor.dtype).ok_or_else(|| {
            format!("tensor {} has type {:?}, which safetensors cannot store", tensor.name, tensor.dtype)
        })?;
        tensors.push((dtype, tensor));
    }
    tensors.sort_by(|(left_type, left), (right_type, right)| {
        right_type.cmp(left_type).then_with(|| left.name.cmp(&right.name))
    });
    let invalid = |e: serde_json::Error| format!("the safetensors header cannot be written ({e})");
    // serde_json's maps are sorted by key.
    let mut header = serde_json::Map::new();
    let metadata = SafetensorsStore::default_metadata();
    header.insert("__metadata__".into(), serde_json::to_value(metadata).map_err(invalid)?);
    let mut offset = 0;
    for (dtype, tensor) in &tensors {
        let end = offset + tensor.byte_len();
        let info = safetensors::tensor::TensorInfo {
            dtype: *dtype,
            shape: tensor.shape.to_vec(),
            data_offsets: (offset, end),
        };
        header.insert(tensor.name.clone(), serde_json::to_value(info).map_err(invalid)?);
        offset = end;
    }
    let mut text = serde_json::to_vec(&header).map_err(invalid)?;
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut start = Vec::with_capacity(8 + text.len());
    start.extend_from_slice(&(text.len() as u64).to_le_bytes());
    start.extend_from_slice(&text);
    emit(Box::new(start))?;
    for (_, tensor) in tensors {
        let name = tensor.name.clone();
        let bytes = tensor.into_bytes().map_err(|e| format!("tensor {name} cannot be read ({e})"))?;
        emit(Box::new(bytes))?;
    }
    Ok(())
}

/// The safetensors type Burn stores a tensor type as (as its `SafetensorsStore` does); `None`
/// for the types it refuses.
fn safetensors_dtype(dtype: burn::tensor::DType) -> Option<safetensors::Dtype> {
    use burn::tensor::{BoolStore, DType};
    use safetensors::Dtype;
    Some(match dtype {
        DType::F64 => Dtype::F64,
        DType::F32 | DType::Flex32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U64 => Dtype::U64,
        DType::U32 => Dtype::U32,
        DType::U8 | DType::Bool(BoolStore::U8) => Dtype::U8,
        DType::Bool(BoolStore::Native) => Dtype::BOOL,
        DType::Bool(BoolStore::U32) => Dtype::U32,
        _ => return None,
    })
}

/// The Burn type of a safetensors dtype, as Burn's safetensors reader maps it.
fn burn_dtype(dtype: safetensors::Dtype) -> Option<burn::tensor::DType> {
    use burn::tensor::{BoolStore, DType};
    use safetensors::Dtype;
    Some(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U64 => DType::U64,
        Dtype::U32 => DType::U32,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool(BoolStore::Native),
        _ => return None,
    })
}

/// Writes a checkpoint folder `folder/name` atomically and returns it.
///
/// The files are encoded piece by piece (the weights on this thread, the optimizer state on a
/// helper) while another helper writes and syncs them and a third hashes them, so that the disk
/// starts at once and never waits for the optimizer state. On any error the partial folder is
/// removed and every earlier checkpoint is untouched; the error names the file and what the
/// operating system said (a full disk says so).
pub fn save(folder: &Path, name: &str, manifest: Manifest, contents: Contents<'_>) -> Result<Checkpoint, TrainError> {
    let partial = folder.join(format!(".{name}.partial"));
    let result = write_partial(&partial, manifest, contents).and_then(|manifest| {
        let dir = folder.join(name);
        let io = |action: &'static str| {
            let dir = dir.clone();
            move |source| TrainError::Io(FileError { path: dir, action, source })
        };
        if dir.exists() {
            // The same step saved again (a resumed run replaying it): the new one replaces it.
            std::fs::remove_dir_all(&dir).map_err(io("replace the checkpoint"))?;
        }
        std::fs::rename(&partial, &dir).map_err(io("move into place the checkpoint"))?;
        sync_dir(folder).map_err(io("sync the folder of the checkpoint"))?;
        Ok(Checkpoint { dir, manifest })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

fn write_partial(partial: &Path, mut manifest: Manifest, contents: Contents<'_>) -> Result<Manifest, TrainError> {
    if partial.exists() {
        std::fs::remove_dir_all(partial).map_err(|source| {
            TrainError::Io(FileError {
                path: partial.to_path_buf(),
                action: "remove the leftover partial checkpoint",
                source,
            })
        })?;
    }
    std::fs::create_dir_all(partial).map_err(|source| {
        TrainError::Io(FileError { path: partial.to_path_buf(), action: "create the checkpoint folder", source })
    })?;
    manifest.format = MANIFEST_FORMAT;
    manifest.files = write_files(partial, contents)?;
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest is always serializable to JSON");
    write_synced(&partial.join(MANIFEST_FILE), &text)?;
    sync_dir(partial).map_err(|source| {
        TrainError::Io(FileError { path: partial.to_path_buf(), action: "sync the checkpoint folder", source })
    })?;
    Ok(manifest)
}

/// Pieces an encoder may run ahead of the writer: enough to keep the disk busy while the next is
/// copied out, few enough to bound the memory held.
const PIECES_IN_FLIGHT: usize = 2;

/// What an encoder hears when the writer stopped on an error, which is the one [`save`] reports.
const WRITER_STOPPED: &str = "the checkpoint writer stopped";

/// Encodes the files of `contents`, the weights and the training state on this thread and the
/// optimizer state on a helper, while another helper writes each piece as it comes (and another
/// hashes it); returns their manifest entries.
///
/// The optimizer state is two thirds of the bytes: encoded beside the weights' streaming, it is
/// ready when the writer is done with them, instead of keeping the disk waiting.
fn write_files(partial: &Path, contents: Contents<'_>) -> Result<BTreeMap<String, FileEntry>, TrainError> {
    let Contents { model, optimizer, state } = contents;
    std::thread::scope(|scope| {
        // One channel of pieces per file, handed to the writer in order: a file ends when its
        // sender drops.
        let (files, to_write) = std::sync::mpsc::sync_channel::<(&'static str, Receiver<Encoded>)>(3);
        let writer = scope.spawn(move || -> Result<BTreeMap<String, FileEntry>, TrainError> {
            let mut entries = BTreeMap::new();
            for (file, pieces) in to_write {
                entries.insert(file.to_string(), write_file(&partial.join(file), pieces)?);
                if file == MODEL_FILE {
                    faults::hit(Fault::CheckpointWrite);
                }
            }
            Ok(entries)
        });
        let (model_sender, model_pieces) = std::sync::mpsc::sync_channel(PIECES_IN_FLIGHT);
        let (optimizer_sender, optimizer_pieces) = std::sync::mpsc::sync_channel(PIECES_IN_FLIGHT);
        let (state_sender, state_pieces) = std::sync::mpsc::sync_channel(PIECES_IN_FLIGHT);
        for entry in [(MODEL_FILE, model_pieces), (OPTIMIZER_FILE, optimizer_pieces), (STATE_FILE, state_pieces)] {
            // A closed channel means the writer failed; its error is the one reported below.
            if files.send(entry).is_err() {
                break;
            }
        }
        drop(files);
        let optimizer = scope.spawn(move || encode_into(optimizer, optimizer_sender));
        let mut failure = None;
        for (file, encode, sender) in [(MODEL_FILE, model, model_sender), (STATE_FILE, state, state_sender)] {
            if let Err(message) = encode_into(encode, sender) {
                failure = Some(TrainError::Checkpoint { path: partial.join(file), message });
                break;
            }
        }
        let optimizer = optimizer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        if let Err(message) = optimizer {
            failure = failure.or(Some(TrainError::Checkpoint { path: partial.join(OPTIMIZER_FILE), message }));
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(written),
        }
    })
}

/// Runs `encode`, sending its pieces on `sender`, which it drops at the end (the file's end).
fn encode_into(encode: Encoder<'_>, sender: SyncSender<Encoded>) -> Result<(), String> {
    let mut emit = |piece| sender.send(piece).map_err(|_| WRITER_STOPPED.to_string());
    encode(&mut emit)
}

/// Bytes handed to the kernel at a time when writing a checkpoint file; each is sent on to the
/// disk at once rather than when the final sync asks for all of them.
const WRITE_CHUNK: usize = 8 << 20;

/// Writes the pieces into a new file at `path` while a helper thread hashes them, and syncs it.
fn write_file(path: &Path, pieces: Receiver<Encoded>) -> Result<FileEntry, TrainError> {
    let io =
        |action: &'static str| move |source| TrainError::Io(FileError { path: path.to_path_buf(), action, source });
    faults::disk_full().map_err(io("write the checkpoint file"))?;
    let mut file = File::create(path).map_err(io("create the checkpoint file"))?;
    let (bytes, digest) = std::thread::scope(|scope| {
        let (to_hash, hashed) = std::sync::mpsc::sync_channel::<Arc<Encoded>>(PIECES_IN_FLIGHT);
        let hasher = scope.spawn(move || {
            let mut hasher = blake3::Hasher::new();
            for piece in hashed {
                absorb(&mut hasher, &piece);
            }
            hasher.finalize().to_hex().to_string()
        });
        let mut bytes = 0u64;
        let written = pieces.into_iter().try_for_each(|piece| {
            let piece = Arc::new(piece);
            // The hasher only stops when this thread stops sending.
            let _ = to_hash.send(Arc::clone(&piece));
            for chunk in piece.chunks(WRITE_CHUNK) {
                file.write_all(chunk)?;
                start_writeback(&file, bytes, chunk.len());
                bytes += chunk.len() as u64;
            }
            Ok(())
        });
        drop(to_hash);
        let digest = hasher.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.map(|()| (bytes, digest))
    })
    .map_err(io("write the checkpoint file"))?;
    file.sync_all().map_err(io("sync the checkpoint file"))?;
    Ok(FileEntry { bytes, blake3: digest })
}

/// Asks the kernel to start writing `length` bytes at `offset` of `file` to the disk now, without
/// waiting for them: the final sync then finds most of the file already written, instead of
/// the disk idling while the file is encoded and then writing all of it at once.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, length: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only schedules write-back of its pages. Failing
    // it costs speed, never data, so its result is not needed: the final sync reports errors.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, length as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Elsewhere the final sync does all the writing.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _length: usize) {}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io =
        |action: &'static str| move |source| TrainError::Io(FileError { path: path.to_path_buf(), action, source });
    faults::disk_full().map_err(io("write the checkpoint file"))?;
    let mut file = File::create(path).map_err(io("create the checkpoint file"))?;
    file.write_all(bytes).map_err(io("write the checkpoint file"))?;
    file.sync_all().map_err(io("sync the checkpoint file"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Files from this size on are hashed on every core when verified: one core hashes 1–5 GB/s
/// (more with wider vector units), no faster than a fast disk reads.
const PARALLEL_HASH_BYTES: usize = 1 << 20;

/// Feeds `bytes` to `hasher`, on every core when they are many.
fn absorb(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_HASH_BYTES {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

/// Bytes read at a time by [`hash_file`]: large enough for the disk to stream, small enough that
/// the first chunk is hashed soon.
const HASH_CHUNK: usize = 8 << 20;

/// The length and BLAKE3 of a file, hashing each chunk while a helper thread reads the next, so
/// that verifying takes about as long as reading.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = File::open(path)?;
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let reader = scope.spawn(move || -> std::io::Result<()> {
            loop {
                let mut chunk = Vec::with_capacity(HASH_CHUNK);
                (&mut file).take(HASH_CHUNK as u64).read_to_end(&mut chunk)?;
                let last = chunk.len() < HASH_CHUNK;
                if sender.send(chunk).is_err() || last {
                    return Ok(());
                }
            }
        });
        let mut hasher = blake3::Hasher::new();
        let mut length = 0u64;
        for chunk in receiver {
            length += chunk.len() as u64;
            absorb(&mut hasher, &chunk);
        }
        reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok((length, hasher.finalize().to_hex().to_string()))
    })
}

/// A file's bytes, in a buffer aligned as Burn's tensors need, so that Burn takes them without
/// the copy it makes of a byte vector (it re-allocates every `Vec<u8>` to 16-byte alignment,
/// whatever the pointer's actual alignment).
struct Kept {
    words: Vec<u128>,
    len: usize,
}

impl Kept {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialized bytes ([`read_hashed`]).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    /// The bytes as Burn's [`Bytes`](burn::tensor::Bytes), shared, so that windows of them can
    /// become tensors without a copy.
    fn into_shared(self) -> burn::tensor::Bytes {
        let len = self.len;
        let shared = burn::tensor::Bytes::from_elems(self.words).shared();
        shared.view(0, len).expect("the buffer holds at least `len` bytes")
    }
}

/// A file's bytes and BLAKE3, read once: a helper thread reads each chunk into its place in the
/// buffer while this thread hashes the one before, so that this takes as long as [`hash_file`].
fn read_hashed(path: &Path) -> std::io::Result<(u64, String, Kept)> {
    let file = File::open(path)?;
    let expected = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    let word = std::mem::size_of::<u128>();
    let mut words: Vec<u128> = Vec::with_capacity(expected.div_ceil(word));
    let mut hasher = blake3::Hasher::new();
    let spare = words.spare_capacity_mut();
    // SAFETY: the same memory seen as bytes; `MaybeUninit<u8>` may hold anything.
    let spare = unsafe {
        std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<std::mem::MaybeUninit<u8>>(), spare.len() * word)
    };
    let spare = &mut spare[..expected];
    let filled = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<&[u8]>(1);
        let file = &file;
        let reader = scope.spawn(move || -> std::io::Result<usize> {
            let mut filled = 0;
            for chunk in spare.chunks_mut(HASH_CHUNK) {
                let wanted = chunk.len();
                let read = read_into(file, chunk)?;
                filled += read.len();
                let ended = read.len() < wanted;
                if sender.send(read).is_err() || ended {
                    break;
                }
            }
            Ok(filled)
        });
        for chunk in receiver {
            absorb(&mut hasher, chunk);
        }
        reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    // The last word may be partly filled: zero the rest of it.
    let tail = filled.next_multiple_of(word) - filled;
    // SAFETY: `filled <= expected`, and the capacity holds `expected.div_ceil(word)` words, so the
    // `tail` bytes after the first `filled` lie within it.
    unsafe { words.as_mut_ptr().cast::<u8>().add(filled).write_bytes(0, tail) };
    // SAFETY: the reader wrote the first `filled` bytes (`read_into`) and the rest of the last word
    // was zeroed above.
    unsafe { words.set_len(filled.div_ceil(word)) };
    // A file that grew after it was measured is longer than what was read: say how long.
    let length =
        if (&file).read(&mut [0u8; 1])? > 0 { file.metadata()?.len().max(filled as u64 + 1) } else { filled as u64 };
    Ok((length, hasher.finalize().to_hex().to_string(), Kept { words, len: filled }))
}

/// Reads from `file` into `buffer` until it is full or the file ends; returns the bytes read.
/// The buffer need not be initialized (read(2) writes it), which spares zeroing a buffer that is
/// about to be overwritten.
#[cfg(unix)]
fn read_into<'b>(file: &File, buffer: &'b mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<&'b [u8]> {
    use std::os::fd::AsRawFd;
    let mut done = 0;
    while done < buffer.len() {
        let rest = &mut buffer[done..];
        // SAFETY: read(2) writes at most `rest.len()` bytes to `rest`, which is valid for writes.
        let read = unsafe { libc::read(file.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match read {
            0 => break,
            read if read > 0 => done += read as usize,
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    // SAFETY: the first `done` bytes were written by read(2) above.
    Ok(unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast(), done) })
}

/// Elsewhere the buffer is zeroed first and read through the standard library.
#[cfg(not(unix))]
fn read_into<'b>(mut file: &File, buffer: &'b mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<&'b [u8]> {
    buffer.fill(std::mem::MaybeUninit::new(0));
    // SAFETY: every byte of `buffer` was initialized on the line above.
    let buffer = unsafe { &mut *(buffer as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
    let mut done = 0;
    while done < buffer.len() {
        match file.read(&mut buffer[done..]) {
            Ok(0) => break,
            Ok(read) => done += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(&buffer[..done])
}

/// Reads a checkpoint's manifest, without checking the files it lists.
fn read_manifest(dir: &Path) -> Result<Manifest, TrainError> {
    let corrupt = |message: String| TrainError::Checkpoint { path: dir.to_path_buf(), message };
    let text = std::fs::read(dir.join(MANIFEST_FILE))
        .map_err(|e| corrupt(format!("has no readable {MANIFEST_FILE} ({e}); it is incomplete")))?;
    serde_json::from_slice(&text).map_err(|e| corrupt(format!("{MANIFEST_FILE} is not valid ({e})")))
}

/// Reads a checkpoint's manifest and checks every file's size and hash.
///
/// The error says which file is missing, truncated or altered; the caller decides whether to fall
/// back to another checkpoint.
pub fn verify(dir: &Path) -> Result<Checkpoint, TrainError> {
    check(dir, &[]).map(|(checkpoint, _)| checkpoint)
}

/// A checkpoint verified for resuming, with its weights and optimizer state kept from the read
/// that verified them, so that restoring makes tensors of those bytes instead of reading the
/// disk again. Until then they are held in memory beside whatever the caller does in between
/// (loading the data, building the model).
pub struct Resumable {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    weights: Kept,
    optimizer: Kept,
}

impl Resumable {
    /// Reads and checks the checkpoint in `dir` as [`verify`] does, keeping its weights and
    /// optimizer state.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        let (checkpoint, mut kept) = check(dir, &[MODEL_FILE, OPTIMIZER_FILE])?;
        let mut take = |file: &str| kept.remove(file).expect("check keeps every file it is asked to keep");
        let (weights, optimizer) = (take(MODEL_FILE), take(OPTIMIZER_FILE));
        Ok(Resumable { checkpoint, weights, optimizer })
    }

    /// Loads the weights into `model`, which must have the checkpoint's architecture, and the
    /// optimizer state into `optimizer`, which must be the one the run builds from its config.
    ///
    /// Each weight tensor is copied once out of the bytes read, whose buffer is then freed. The
    /// optimizer's tensors are windows of its buffer (Burn's optimizer record makes them so), each
    /// copied by the first optimizer step that updates it, and the buffer lives as long as they
    /// do. Through Burn's own readers the weights were copied twice, and the optimizer state once
    /// more, because Burn re-allocates every byte vector to 16-byte alignment.
    pub fn restore<M: Network>(self, model: M, optimizer: ModuleOptimizer) -> Result<(M, ModuleOptimizer), TrainError> {
        let weights_file = self.checkpoint.model_file();
        let model = apply_safetensors(model, self.weights, &weights_file)?;
        let optimizer = optimizer.from_bytes(self.optimizer.into_shared()).map_err(|e| TrainError::Checkpoint {
            path: self.checkpoint.dir.join(OPTIMIZER_FILE),
            message: format!("the optimizer state cannot be read ({e})"),
        })?;
        Ok((model, optimizer))
    }
}

/// Checks a checkpoint's files against its manifest, keeping the bytes of the files named in
/// `keep`.
fn check(dir: &Path, keep: &[&str]) -> Result<(Checkpoint, BTreeMap<String, Kept>), TrainError> {
    let corrupt = |message: String| TrainError::Checkpoint { path: dir.to_path_buf(), message };
    let manifest = read_manifest(dir)?;
    let mut kept = BTreeMap::new();
    for required in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        if !manifest.files.contains_key(required) {
            return Err(corrupt(format!("the manifest does not list {required}")));
        }
    }
    for (file, entry) in &manifest.files {
        let path = dir.join(file);
        let read = if keep.contains(&file.as_str()) {
            // Its length is checked before a buffer of that size is allocated.
            match std::fs::metadata(&path) {
                Ok(found) if found.len() != entry.bytes => Ok((found.len(), String::new(), None)),
                _ => read_hashed(&path).map(|(length, digest, bytes)| (length, digest, Some(bytes))),
            }
        } else {
            hash_file(&path).map(|(length, digest)| (length, digest, None))
        };
        let (length, found, bytes) = read.map_err(|e| corrupt(format!("{file} cannot be read ({e})")))?;
        if length != entry.bytes {
            return Err(corrupt(format!("{file} has {length} bytes, the manifest says {}", entry.bytes)));
        }
        if found != entry.blake3 {
            return Err(corrupt(format!(
                "{file} is corrupt: its BLAKE3 hash is {}…, the manifest says {}…",
                &found[..12],
                &entry.blake3[..12.min(entry.blake3.len())]
            )));
        }
        if let Some(bytes) = bytes {
            kept.insert(file.clone(), bytes);
        }
    }
    Ok((Checkpoint { dir: dir.to_path_buf(), manifest }, kept))
}

/// The checkpoints in `folder`, verified, newest first; with one warning per folder that failed
/// verification. Leftover `.partial` folders (a write that was interrupted) are removed.
///
/// Verification reads and hashes every file of every checkpoint: for evaluating, which may want
/// the best rather than the newest. Resuming uses [`latest_resumable`]; bookkeeping that only
/// needs names and values uses [`list`].
pub fn scan(folder: &Path) -> Result<(Vec<Checkpoint>, Vec<String>), TrainError> {
    let mut good = Vec::new();
    let mut warnings = Vec::new();
    for dir in folders(folder)? {
        match verify(&dir) {
            Ok(checkpoint) => good.push(checkpoint),
            Err(error) => warnings.push(error.to_string()),
        }
    }
    newest_first(&mut good);
    Ok((good, warnings))
}

/// The checkpoints in `folder` whose manifest reads, newest first, without hashing their files:
/// what pruning and the end of a run need to know, at the cost of reading a few hundred bytes per
/// checkpoint rather than every weight.
pub fn list(folder: &Path) -> Result<Vec<Checkpoint>, TrainError> {
    let mut found: Vec<Checkpoint> = folders(folder)?
        .into_iter()
        .filter_map(|dir| read_manifest(&dir).ok().map(|manifest| Checkpoint { dir, manifest }))
        .collect();
    newest_first(&mut found);
    Ok(found)
}

/// The checkpoint folders in `folder`; leftover `.partial` folders are removed. A missing folder
/// holds none.
fn folders(folder: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let io = |path: &Path, action: &'static str| {
        let path = path.to_path_buf();
        move |source| TrainError::Io(FileError { path, action, source })
    };
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(folder, "list the checkpoints in")(error)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(folder, "list the checkpoints in"))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !path.is_dir() {
            continue;
        }
        if name.starts_with('.') {
            if name.ends_with(".partial") {
                std::fs::remove_dir_all(&path).map_err(io(&path, "remove the interrupted checkpoint"))?;
            }
            continue;
        }
        found.push(path);
    }
    Ok(found)
}

fn newest_first(checkpoints: &mut [Checkpoint]) {
    checkpoints.sort_by(|a, b| {
        (b.manifest.step, b.manifest.epoch_complete).cmp(&(a.manifest.step, a.manifest.epoch_complete))
    });
}

/// Reads a checkpoint's training state, checking its format.
pub fn read_state(checkpoint: &Checkpoint) -> Result<crate::state::TrainState, TrainError> {
    let path = checkpoint.dir.join(STATE_FILE);
    let error = |message: String| TrainError::Checkpoint { path: path.clone(), message };
    let bytes = std::fs::read(&path).map_err(|e| error(format!("cannot be read ({e})")))?;
    let state: crate::state::TrainState =
        serde_json::from_slice(&bytes).map_err(|e| error(format!("is not a training state ({e})")))?;
    if state.format != crate::state::STATE_FORMAT {
        return Err(error(format!(
            "has format {}, this Regimen reads format {}",
            state.format,
            crate::state::STATE_FORMAT
        )));
    }
    Ok(state)
}

/// The newest verified checkpoint in `folder` (the `last` one), with warnings for the newer ones
/// that failed verification and were skipped, and for any folder whose manifest cannot be read.
pub fn latest(folder: &Path) -> Result<(Checkpoint, Vec<String>), TrainError> {
    newest(folder, verify)
}

/// [`latest`], read for resuming: older checkpoints are not read at all.
pub fn latest_resumable(folder: &Path) -> Result<(Resumable, Vec<String>), TrainError> {
    newest(folder, Resumable::read)
}

/// The newest checkpoint in `folder` that `open` accepts, trying them newest first, with a
/// warning for each one refused on the way and each whose manifest cannot be read.
fn newest<T>(folder: &Path, open: impl Fn(&Path) -> Result<T, TrainError>) -> Result<(T, Vec<String>), TrainError> {
    let mut warnings = Vec::new();
    let mut found = Vec::new();
    for dir in folders(folder)? {
        match read_manifest(&dir) {
            Ok(manifest) => found.push(Checkpoint { dir, manifest }),
            Err(error) => warnings.push(error.to_string()),
        }
    }
    newest_first(&mut found);
    for candidate in found {
        match open(&candidate.dir) {
            Ok(opened) => return Ok((opened, warnings)),
            Err(error) => warnings.push(error.to_string()),
        }
    }
    Err(TrainError::Checkpoint {
        path: folder.to_path_buf(),
        message: if warnings.is_empty() {
            "holds no checkpoint".to_string()
        } else {
            format!("holds no checkpoint that verifies: {}", warnings.join("; "))
        },
    })
}

/// The checkpoint with the best monitored value in `mode`, by the one rule of
/// [`regimen_metrics::best`]: the earliest on ties, never one without a finite value.
pub fn best(checkpoints: &[Checkpoint], mode: Mode) -> Option<&Checkpoint> {
    let mut oldest_first: Vec<&Checkpoint> = checkpoints.iter().collect();
    oldest_first.sort_by_key(|c| (c.manifest.step, c.manifest.epoch_complete));
    let values = oldest_first.iter().map(|c| c.manifest.monitor_value.unwrap_or(f64::NAN));
    regimen_metrics::best(values, mode).map(|(index, _)| oldest_first[index])
}

/// Which checkpoints to keep besides the newest two and the best.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Retention {
    /// Also keep the `k` best by the monitored metric.
    pub top_k: usize,
    /// Also keep the end of every `n`-th epoch.
    pub every_epochs: Option<u64>,
}

/// Deletes the checkpoints that no rule keeps: the newest two (the last and the one before, the
/// fallback should the last be damaged later), the best, the top `k` and every `n`-th epoch are
/// kept. Returns the folders deleted.
pub fn prune(folder: &Path, mode: Mode, retention: Retention) -> Result<Vec<PathBuf>, TrainError> {
    let found = list(folder)?;
    let mut keep: Vec<&Path> = found.iter().take(2).map(|c| c.dir.as_path()).collect();
    let mut ranked: Vec<&Checkpoint> =
        found.iter().filter(|c| c.manifest.monitor_value.is_some_and(f64::is_finite)).collect();
    ranked.sort_by(|a, b| {
        let (x, y) = (a.manifest.monitor_value.unwrap_or(f64::NAN), b.manifest.monitor_value.unwrap_or(f64::NAN));
        let order = if mode.is_better(x, y) {
            std::cmp::Ordering::Less
        } else if mode.is_better(y, x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        };
        order.then(a.manifest.step.cmp(&b.manifest.step))
    });
    keep.extend(ranked.iter().take(retention.top_k.max(1)).map(|c| c.dir.as_path()));
    if let Some(n) = retention.every_epochs.filter(|&n| n > 0) {
        keep.extend(
            found
                .iter()
                .filter(|c| c.manifest.epoch_complete && c.manifest.epoch.is_multiple_of(n))
                .map(|c| c.dir.as_path()),
        );
    }
    let mut deleted = Vec::new();
    for checkpoint in &found {
        if !keep.contains(&checkpoint.dir.as_path()) {
            std::fs::remove_dir_all(&checkpoint.dir).map_err(|source| {
                TrainError::Io(FileError { path: checkpoint.dir.clone(), action: "delete the old checkpoint", source })
            })?;
            deleted.push(checkpoint.dir.clone());
        }
    }
    Ok(deleted)
}

/// Loads safetensors weights into `model`, which must have the same architecture.
///
/// `path` is a weights file or a checkpoint folder (verified first).
pub fn load_weights<M: Network>(mut model: M, path: &Path) -> Result<M, TrainError> {
    let file = if path.is_dir() { verify(path)?.model_file() } else { path.to_path_buf() };
    if !file.is_file() {
        return Err(TrainError::Checkpoint { path: file, message: "the file does not exist".into() });
    }
    let applied = model.load_from(&mut SafetensorsStore::from_file(&file)).map_err(|e| unreadable(&file, e))?;
    complete(model, applied, &file)
}

/// Loads the weights of a checkpoint's safetensors file, read into `bytes`, into `model`, copying
/// each tensor once.
fn apply_safetensors<M: Network>(mut model: M, bytes: Kept, file: &Path) -> Result<M, TrainError> {
    let parsed = safetensors::SafeTensors::deserialize(bytes.bytes()).map_err(|e| unreadable(file, e))?;
    let mut tensors = Vec::new();
    for (name, view) in parsed.tensors() {
        let dtype =
            burn_dtype(view.dtype()).ok_or_else(|| unreadable(file, format!("{name} has dtype {:?}", view.dtype())))?;
        let data = burn::tensor::TensorData::try_from_bytes(aligned_copy(view.data()), view.shape().to_vec(), dtype)
            .map_err(|e| unreadable(file, e))?;
        tensors.push(burn::store::bridge::from_data(data, name, None));
    }
    let applied = model.apply(tensors, None, None, false);
    complete(model, applied, file)
}

/// `bytes` copied once into a buffer of their own, aligned as Burn's tensors need (a window of the
/// file's buffer would keep all of it alive for as long as the tensor lives).
fn aligned_copy(bytes: &[u8]) -> burn::tensor::Bytes {
    let word = std::mem::size_of::<u128>();
    let mut copy = burn::tensor::Bytes::from_elems(Vec::<u128>::with_capacity(bytes.len().div_ceil(word)));
    copy.extend_from_byte_slice_aligned(bytes, word);
    copy
}

/// The error for a weights file whose contents cannot be read, saying why.
fn unreadable(file: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: file.to_path_buf(),
        message: format!("could not read weights ({reason}); the file may be corrupt"),
    }
}

/// `model` once weights from `file` were applied to it, or an error saying what was wrong.
fn complete<M>(model: M, applied: burn::store::ApplyResult, file: &Path) -> Result<M, TrainError> {
    if !applied.errors.is_empty() {
        let errors = applied.errors.iter().map(ToString::to_string).collect::<Vec<_>>();
        return Err(unreadable(file, errors.join("; ")));
    }
    if !applied.missing.is_empty() {
        return Err(TrainError::Checkpoint {
            path: file.to_path_buf(),
            message: format!(
                "it lacks {} tensors the model needs (first: {}); it was saved from a different model",
                applied.missing.len(),
                applied.missing[0].0
            ),
        });
    }
    Ok(model)
}

/// Writes `bytes` to `path` atomically ([`regimen_fs::write`], the one way every Regimen file
/// writer replaces a file). On error any earlier file at `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    regimen_fs::write(path, bytes)
        .map_err(|source| TrainError::Io(FileError { path: path.to_path_buf(), action: "write", source }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};
    use burn::prelude::*;

    fn mlp(device: &Device) -> Mlp {
        MlpConfig { inputs: 3, hidden: vec![4], outputs: 2, activation: "relu".into(), dropout: 0.0, batch_norm: true }
            .init(device)
    }

    fn outputs(model: &Mlp, device: &Device) -> Vec<f32> {
        let input = Tensor::<2>::from_data([[0.5f32, -1.0, 2.0], [1.0, 0.0, -0.5]], device);
        model.valid().forward(input).into_data().try_to_vec::<f32>().unwrap()
    }

    fn manifest(step: u64, value: Option<f64>) -> Manifest {
        Manifest {
            format: 0,
            step,
            epoch: step / 10,
            epoch_complete: step.is_multiple_of(10),
            monitor: "val.loss".into(),
            monitor_mode: Some(Mode::Min),
            monitor_value: value,
            files: BTreeMap::new(),
        }
    }

    fn save_dummy(folder: &Path, step: u64, value: Option<f64>) -> Checkpoint {
        let state = format!("{{\"step\":{step}}}");
        let contents = Contents {
            model: encoded(b"weights".to_vec()),
            optimizer: encoded(b"moments".to_vec()),
            state: encoded(state.into_bytes()),
        };
        save(folder, &format!("ck-step{step}"), manifest(step, value), contents).unwrap()
    }

    /// BLAKE3 of `bytes` the way [`verify`] computes it.
    fn hash(bytes: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new();
        absorb(&mut hasher, bytes);
        hasher.finalize().to_hex().to_string()
    }

    #[test]
    fn large_files_hash_on_every_core_to_the_same_digest() {
        let bytes: Vec<u8> = (0..3 * PARALLEL_HASH_BYTES + 17).map(|i| (i * 31 % 251) as u8).collect();
        assert_eq!(hash(&bytes), blake3::hash(&bytes).to_hex().to_string(), "checkpoints written before still verify");
        // A file hashed chunk by chunk while it is read has the digest of its bytes, at any length.
        let dir = tempfile::tempdir().unwrap();
        for length in [0, 1, HASH_CHUNK - 1, HASH_CHUNK, 2 * HASH_CHUNK + 5] {
            let bytes: Vec<u8> = (0..length).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join("file");
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(hash_file(&path).unwrap(), (length as u64, hash(&bytes)), "length {length}");
            // Read into memory while hashing: the same digest, and the bytes themselves.
            let (read, digest, kept) = read_hashed(&path).unwrap();
            assert_eq!((read, digest), (length as u64, hash(&bytes)), "length {length}");
            assert_eq!(&kept.into_shared()[..], &bytes[..], "length {length}");
        }
        assert_eq!(hash(b"small"), blake3::hash(b"small").to_hex().to_string());
    }

    #[test]
    fn a_checkpoint_round_trips_and_leaves_no_partial_folder() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        device.seed(1);
        let saved = mlp(&device);
        let weights = encode_weights(&saved).unwrap();
        let contents = Contents {
            model: encoded(weights.clone()),
            optimizer: encoded(b"opt".to_vec()),
            state: encoded(b"{}".to_vec()),
        };
        let checkpoint = save(dir.path(), "mlp-ep1", manifest(10, Some(0.5)), contents).unwrap();
        assert_eq!(checkpoint.manifest.files.len(), 3);
        assert_eq!(checkpoint.bytes(), weights.len() as u64 + 5);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec!["mlp-ep1"], "no partial folder is left");
        assert_eq!(verify(&checkpoint.dir).unwrap(), checkpoint);

        device.seed(2);
        let fresh = mlp(&device);
        assert_ne!(outputs(&fresh, &device), outputs(&saved, &device));
        let loaded = load_weights(fresh, &checkpoint.dir).unwrap();
        assert_eq!(outputs(&loaded, &device), outputs(&saved, &device));
    }

    #[test]
    fn a_resumed_model_and_optimizer_take_the_same_next_step() {
        use burn::optim::GradientsParams;
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex().autodiff();
        let step = |model: Mlp, optimizer: &mut ModuleOptimizer| {
            let input = Tensor::<2>::from_data([[0.5f32, -1.0, 2.0], [1.0, 0.0, -0.5]], &device);
            let grads = GradientsParams::from_grads(model.forward(input).powf_scalar(2.0).mean().backward(), &model);
            optimizer.step(1e-2, model, grads)
        };
        let config = crate::TrainConfig::default();
        device.seed(5);
        let mut optimizer = crate::optim::build_optimizer(&config);
        let trained = step(mlp(&device), &mut optimizer);
        let contents = Contents::of(&trained, &optimizer, b"{}".to_vec());
        let checkpoint = save(dir.path(), "mlp-step1", manifest(1, None), contents).unwrap();

        device.seed(6);
        let fresh = crate::state::assign_param_ids(mlp(&device), &crate::state::param_ids(&trained)).unwrap();
        assert_ne!(outputs(&fresh, &device), outputs(&trained, &device));
        let resumable = Resumable::read(&checkpoint.dir).unwrap();
        let (restored, mut restored_optimizer) =
            resumable.restore(fresh, crate::optim::build_optimizer(&config)).unwrap();
        assert_eq!(outputs(&restored, &device), outputs(&trained, &device));
        // With the weights and moments restored, the next step is the one the uninterrupted run
        // takes, bit for bit (the optimizer's tensors are windows of the bytes read until it
        // writes them).
        let continued = step(trained, &mut optimizer);
        let resumed = step(restored, &mut restored_optimizer);
        assert_eq!(outputs(&resumed, &device), outputs(&continued, &device));
        assert_eq!(encode_weights(&resumed).unwrap(), encode_weights(&continued).unwrap());
        // And so are the moments that step left (the burnpack's tensor order is not fixed, so the
        // next step compares them).
        let (continued, resumed) = (step(continued, &mut optimizer), step(resumed, &mut restored_optimizer));
        assert_eq!(encode_weights(&resumed).unwrap(), encode_weights(&continued).unwrap());
    }

    #[test]
    fn equal_weights_encode_to_equal_bytes() {
        let device = Device::flex();
        device.seed(3);
        let model = mlp(&device);
        let first = encode_weights(&model).unwrap();
        assert_eq!(first, encode_weights(&model).unwrap());
        let header = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
        let text = std::str::from_utf8(&first[8..8 + header]).unwrap();
        assert!(text.starts_with("{\"__metadata__\""), "keys are sorted: {text}");
        assert_eq!((8 + header) % 8, 0);
    }

    #[test]
    fn streamed_weights_are_burns_safetensors_with_the_header_sorted() {
        let device = Device::flex();
        device.seed(4);
        let model = mlp(&device);
        let mut store = SafetensorsStore::from_bytes(None);
        model.save_into(&mut store).unwrap();
        let burns = store.get_bytes().unwrap();
        let length = u64::from_le_bytes(burns[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&burns[8..8 + length]).unwrap();
        let mut sorted = serde_json::to_vec(&header).unwrap();
        sorted.resize(sorted.len().next_multiple_of(8), b' ');
        let mut expected = (sorted.len() as u64).to_le_bytes().to_vec();
        expected.extend_from_slice(&sorted);
        expected.extend_from_slice(&burns[8 + length..]);
        assert_eq!(encode_weights(&model).unwrap(), expected);
    }

    #[test]
    fn any_flipped_byte_is_detected_and_the_previous_checkpoint_is_used() {
        let dir = tempfile::tempdir().unwrap();
        save_dummy(dir.path(), 10, Some(0.5));
        let newest = save_dummy(dir.path(), 20, Some(0.4));
        for file in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
            let path = newest.dir.join(file);
            let original = std::fs::read(&path).unwrap();
            let mut bytes = original.clone();
            bytes[0] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            let message = verify(&newest.dir).unwrap_err().to_string();
            assert!(message.contains(file) && message.contains("corrupt"), "{message}");
            let (chosen, warnings) = latest(dir.path()).unwrap();
            assert_eq!(chosen.manifest.step, 10, "falls back to the previous good checkpoint");
            assert!(warnings[0].contains("ck-step20"), "{warnings:?}");
            let (resumable, warnings) = latest_resumable(dir.path()).unwrap();
            assert_eq!(resumable.checkpoint.manifest.step, 10, "resuming falls back too");
            assert!(warnings[0].contains("ck-step20"), "{warnings:?}");
            std::fs::write(&path, &original).unwrap();
        }
        // The kept bytes are the files': these dummy ones are no safetensors and no burnpack, and
        // restoring says which file is wrong.
        let device = Device::flex();
        let restore = |dir: &Path| {
            let resumable = Resumable::read(dir).unwrap();
            match resumable.restore(mlp(&device), crate::optim::build_optimizer(&Default::default())) {
                Ok(_) => panic!("dummy bytes restored"),
                Err(error) => error.to_string(),
            }
        };
        let message = restore(&newest.dir);
        assert!(message.contains("model.safetensors") && message.contains("could not read weights"), "{message}");
        let contents = Contents {
            model: encoded(encode_weights(&mlp(&device)).unwrap()),
            optimizer: encoded(b"moments".to_vec()),
            state: encoded(b"{}".to_vec()),
        };
        let weights_only = save(dir.path(), "ck-weights-only", manifest(30, None), contents).unwrap();
        let message = restore(&weights_only.dir);
        assert!(message.contains("optimizer.bpk") && message.contains("cannot be read"), "{message}");
        std::fs::write(newest.dir.join(OPTIMIZER_FILE), b"short").unwrap();
        let Err(error) = Resumable::read(&newest.dir) else { panic!("a short optimizer state verified") };
        assert!(error.to_string().contains("optimizer.bpk has 5 bytes"), "{error}");
        std::fs::write(newest.dir.join(MODEL_FILE), b"short").unwrap();
        assert!(verify(&newest.dir).unwrap_err().to_string().contains("has 5 bytes"));
        std::fs::remove_file(newest.dir.join(MANIFEST_FILE)).unwrap();
        assert!(verify(&newest.dir).unwrap_err().to_string().contains("incomplete"));
    }

    #[test]
    fn interrupted_writes_are_ignored_and_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        save_dummy(dir.path(), 10, None);
        let partial = dir.path().join(".ck-step20.partial");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join(MODEL_FILE), b"half").unwrap();
        let (chosen, warnings) = latest(dir.path()).unwrap();
        assert_eq!(chosen.manifest.step, 10);
        assert!(warnings.is_empty());
        assert!(!partial.exists());
        let empty = tempfile::tempdir().unwrap();
        assert!(latest(empty.path()).unwrap_err().to_string().contains("holds no checkpoint"));
    }

    #[test]
    fn best_follows_the_mode_and_prune_keeps_last_two_best_and_top_k() {
        let dir = tempfile::tempdir().unwrap();
        let values = [0.9, 0.5, 0.7, 0.6, 0.8, 0.85];
        for (i, value) in values.iter().enumerate() {
            save_dummy(dir.path(), (i as u64 + 1) * 10, Some(*value));
        }
        let (good, _) = scan(dir.path()).expect("scan");
        assert_eq!(best(&good, Mode::Min).unwrap().manifest.step, 20);
        assert_eq!(best(&good, Mode::Max).unwrap().manifest.step, 10);

        let deleted = prune(dir.path(), Mode::Min, Retention { top_k: 2, every_epochs: None }).expect("prune");
        let (kept, _) = scan(dir.path()).expect("scan");
        let steps: Vec<u64> = kept.iter().map(|c| c.manifest.step).collect();
        assert_eq!(steps, vec![60, 50, 40, 20], "last two, best (20) and second best (40)");
        assert_eq!(deleted.len(), 2);

        prune(dir.path(), Mode::Min, Retention::default()).expect("prune");
        let steps: Vec<u64> = scan(dir.path()).expect("scan").0.iter().map(|c| c.manifest.step).collect();
        assert_eq!(steps, vec![60, 50, 20]);
    }

    #[test]
    fn missing_and_corrupt_weight_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let message = load_weights(mlp(&device), &dir.path().join("nope.safetensors")).unwrap_err().to_string();
        assert!(message.contains("nope.safetensors") && message.contains("does not exist"), "{message}");

        let path = dir.path().join("model.safetensors");
        write_atomically(&path, &encode_weights(&mlp(&device)).unwrap()).unwrap();
        assert!(!dir.path().join("model.safetensors.tmp").exists());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, bytes).unwrap();
        let message = load_weights(mlp(&device), &path).unwrap_err().to_string();
        assert!(message.contains("model.safetensors"), "{message}");
    }
}
