//! Transfer learning: starting a run from pretrained weights, and training only part of a model.
//!
//! `init_from` names a run (its best checkpoint), a checkpoint folder, or a safetensors file:
//! Regimen's own (Burn's names and layouts) or one with PyTorch's names and layouts (a linear
//! weight stored `[out, in]`, batch norm's `weight` and `bias`), told apart by the `producer` the
//! file records. A tensor loads when its name, after the `init_map` renames, and its shape match
//! the model's. A tensor whose shape differs keeps its fresh initialization and is reported as
//! skipped: that is how the head is replaced when the class count changed. A file of which
//! nothing fits is an error that shows both sides' names, since a silent fresh start would waste
//! the whole run.
//!
//! `freeze` names modules (glob patterns over module paths, or `all-but-head`) that do not train:
//! their parameters get no gradient, and their batch norms keep their running statistics (they
//! normalize with them, as in Keras). `unfreeze_at` lets them train from that epoch on, at the
//! learning rate times `backbone_lr_scale`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ParamGroup, ParamId};
use burn::store::{ApplyError, ChainAdapter, FloatCastAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::DType;
use regex::Regex;
use serde::Serialize;

use crate::checkpoint::{self, MODEL_FILE};
use crate::error::TrainError;
use crate::model::Network;
use crate::run::{CheckpointChoice, Recorder, choose_checkpoint};

/// The `freeze` pattern that names every module but the head.
pub const ALL_BUT_HEAD: &str = "all-but-head";

/// Where a run's initial weights come from, resolved from `init_from`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pretrained {
    /// The safetensors file read.
    pub file: PathBuf,
    /// The run that trained them, when they come from a Regimen run: the run's lineage.
    pub run_id: Option<String>,
    /// BLAKE3 hash of the file, so a rerun can tell whether it starts from the same weights.
    pub blake3: String,
}

impl Pretrained {
    /// `<file> (blake3 <first 16 hex digits>)`, as the run's record keeps it.
    pub fn describe(&self) -> String {
        format!("{} (blake3 {})", self.file.display(), &self.blake3[..16])
    }
}

/// Resolves `source`: a safetensors file, a checkpoint folder, a run folder, or a run id or name
/// in `recorder`'s store (a run's best checkpoint that verifies).
pub fn resolve(source: &Path, recorder: &Recorder) -> Result<Pretrained, TrainError> {
    let (file, run_id) = if source.is_file() {
        // A run's final weights (`runs/<id>/model.safetensors`) or a checkpoint's keep their lineage.
        let folder = source.parent().unwrap_or(Path::new("."));
        let run = if folder.join(checkpoint::MANIFEST_FILE).is_file() {
            recorder.locate(&folder.display().to_string()).ok().map(|(dir, _)| dir.id())
        } else {
            let dir = regimen_store::RunDir::at(folder);
            dir.events().is_file().then(|| dir.id())
        };
        (source.to_path_buf(), run)
    } else {
        let (dir, chosen) = recorder.locate(&source.display().to_string())?;
        let checkpoint = match chosen {
            Some(path) => checkpoint::verify(&path)?,
            None => choose_checkpoint(&dir, &CheckpointChoice::Best, recorder)?.0,
        };
        (checkpoint.dir.join(MODEL_FILE), Some(dir.id()))
    };
    let bytes = std::fs::read(&file).map_err(|source| {
        TrainError::Io(regimen_fs::FileError { path: file.clone(), action: "read the weights in", source })
    })?;
    Ok(Pretrained { blake3: blake3::hash(&bytes).to_hex().to_string(), file, run_id })
}

/// Whose names and layouts a weights file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Regimen's (Burn's) own.
    Regimen,
    /// PyTorch's `state_dict`.
    PyTorch,
}

/// A model tensor that kept its fresh initialization because the file's has another shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The model's tensor.
    pub tensor: String,
    /// Its shape in the model.
    pub model: Vec<usize>,
    /// Its shape in the file.
    pub file: Vec<usize>,
}

/// What loading pretrained weights did, tensor by tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitReport {
    /// Whose names the file uses.
    pub layout: Layout,
    /// Model tensors loaded from the file.
    pub loaded: Vec<String>,
    /// Model tensors the file does not have: freshly initialized.
    pub new: Vec<String>,
    /// Model tensors the file has with another shape: freshly initialized.
    pub skipped: Vec<Mismatch>,
    /// File tensors the model has no place for.
    pub unused: Vec<String>,
    /// The head replaced for another number of outputs: `(file's outputs, model's outputs)`.
    pub head_replaced: Option<(usize, usize)>,
}

impl InitReport {
    /// One line per kind of outcome, the tensors named.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "loaded {} tensors ({} names), {} new, {} skipped (shape mismatch), {} unused",
            self.loaded.len(),
            match self.layout {
                Layout::Regimen => "Regimen",
                Layout::PyTorch => "PyTorch",
            },
            self.new.len(),
            self.skipped.len(),
            self.unused.len()
        )];
        if let Some((from, to)) = self.head_replaced {
            lines.push(format!("the head is new: {to} outputs where the pretrained one had {from}"));
        }
        if !self.loaded.is_empty() {
            lines.push(format!("loaded: {}", self.loaded.join(", ")));
        }
        if !self.new.is_empty() {
            lines.push(format!("new (not in the file): {}", self.new.join(", ")));
        }
        for mismatch in &self.skipped {
            lines.push(format!(
                "skipped {}: the model's is {:?}, the file's {:?}",
                mismatch.tensor, mismatch.model, mismatch.file
            ));
        }
        if !self.unused.is_empty() {
            lines.push(format!("unused (not in the model): {}", self.unused.join(", ")));
        }
        lines
    }
}

/// One `init_map` rename: `REGEX=REPLACEMENT`, applied to the file's tensor names.
#[derive(Debug, Clone)]
pub struct Rename {
    pattern: String,
    replacement: String,
}

impl Rename {
    /// Parses `REGEX=REPLACEMENT` (`features\.(\d+)=blocks.$1.conv`); the regex must compile.
    pub fn parse(text: &str) -> Result<Rename, TrainError> {
        let invalid = |message: String| TrainError::Config { origin: "the `init_map` setting".into(), message };
        let (pattern, replacement) = text.split_once('=').ok_or_else(|| {
            invalid(format!("`{text}` is not REGEX=REPLACEMENT, e.g. `features\\.(\\d+)=blocks.$1.conv`"))
        })?;
        Regex::new(pattern).map_err(|e| invalid(format!("`{pattern}` is not a regular expression: {e}")))?;
        Ok(Rename { pattern: pattern.to_string(), replacement: replacement.to_string() })
    }
}

/// The names and shapes and the `producer` of a safetensors file.
struct Header {
    tensors: BTreeMap<String, Vec<usize>>,
    producer: Option<String>,
}

/// Reads `bytes`' header with the `safetensors` crate, which also checks that the tensors' offsets
/// fit the file (a truncated download is caught here, by name).
fn read_header(bytes: &[u8], file: &Path) -> Result<Header, TrainError> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| TrainError::Checkpoint {
        path: file.to_path_buf(),
        message: format!("is not a readable safetensors file ({e}); it may be truncated or of another format"),
    })?;
    let tensors = metadata.tensors().into_iter().map(|(name, info)| (name, info.shape.clone())).collect();
    let producer = metadata.metadata().as_ref().and_then(|m| m.get("producer").cloned());
    Ok(Header { tensors, producer })
}

/// A tensor path as users see it: without the leading enum variant of a built-in model (`Cnn.`).
fn display_path(path: &str) -> &str {
    match path.split_once('.') {
        Some((first, rest)) if first.starts_with(|c: char| c.is_ascii_uppercase()) => rest,
        _ => path,
    }
}

/// The model's tensors in declaration order: path (as users see it), shape and parameter id.
fn model_tensors<M: Module>(model: &M) -> Vec<(String, Vec<usize>, Option<ParamId>)> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| (display_path(&t.name).to_string(), t.shape.to_vec(), t.param_id.map(ParamId::from)))
        .collect()
}

/// Loads the tensors of `file` that fit `model`, after `renames`; reports what it did.
///
/// # Errors
/// The file cannot be read or is not safetensors; a tensor cannot be converted; nothing fits.
pub fn load_pretrained<M: Network>(
    mut model: M,
    file: &Path,
    renames: &[Rename],
) -> Result<(M, InitReport), TrainError> {
    let bytes = std::fs::read(file).map_err(|source| {
        TrainError::Io(regimen_fs::FileError { path: file.to_path_buf(), action: "read the weights in", source })
    })?;
    let header = read_header(&bytes, file)?;
    let layout = if header.producer.as_deref() == Some("burn") { Layout::Regimen } else { Layout::PyTorch };
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).allow_partial(true).validate(false);
    if layout == Layout::PyTorch {
        store = store
            .skip_enum_variants(true)
            .with_from_adapter(ChainAdapter::new(PyTorchToBurnAdapter, FloatCastAdapter::to(DType::F32)));
    }
    for rename in renames {
        store = store.with_key_remapping(&rename.pattern, rename.replacement.clone());
    }
    let error = |message: String| TrainError::Checkpoint { path: file.to_path_buf(), message };
    let applied = model.load_from(&mut store).map_err(|e| error(format!("could not read the weights: {e}")))?;
    let mut skipped = Vec::new();
    for problem in &applied.errors {
        match problem {
            ApplyError::ShapeMismatch { path, expected, found } => skipped.push(Mismatch {
                tensor: display_path(path).to_string(),
                model: expected.to_vec(),
                file: found.to_vec(),
            }),
            other => return Err(error(format!("could not load a tensor: {other}"))),
        }
    }
    let tensors = model_tensors(&model);
    let loaded: Vec<String> = applied.applied.iter().map(|p| display_path(p).to_string()).collect();
    if loaded.is_empty() {
        return Err(error(nothing_fits(&header, &tensors, &skipped)));
    }
    let new = tensors
        .iter()
        .map(|(path, _, _)| path)
        .filter(|path| !loaded.contains(path) && !skipped.iter().any(|m| &m.tensor == *path))
        .cloned()
        .collect();
    let head = tensors.last().map(|(path, _, _)| module_of(path).to_string()).unwrap_or_default();
    let head_replaced = skipped
        .iter()
        .find(|m| module_of(&m.tensor) == head && m.model.len() == m.file.len())
        .and_then(|m| Some((*m.file.last()?, *m.model.last()?)));
    let unused = applied.unused.iter().map(|p| display_path(p).to_string()).collect();
    Ok((model, InitReport { layout, loaded, new, skipped, unused, head_replaced }))
}

/// The error when no tensor of the file fits: a few names and shapes from each side.
fn nothing_fits(header: &Header, tensors: &[(String, Vec<usize>, Option<ParamId>)], skipped: &[Mismatch]) -> String {
    let list = |items: Vec<String>| {
        let more = items.len().saturating_sub(6);
        let mut shown: Vec<String> = items.into_iter().take(6).collect();
        if more > 0 {
            shown.push(format!("and {more} more"));
        }
        shown.join(", ")
    };
    let file = list(header.tensors.iter().map(|(name, shape)| format!("`{name}` {shape:?}")).collect());
    let model = list(tensors.iter().map(|(name, shape, _)| format!("`{name}` {shape:?}")).collect());
    let shapes = match skipped.first() {
        Some(m) => format!(" (`{}` is there, but {:?} where the model has {:?})", m.tensor, m.file, m.model),
        None => String::new(),
    };
    format!(
        "none of its {} tensors fits the model{shapes}. The file has {file}; the model has {model}. Rename the \
         file's tensors with --init-map 'REGEX=REPLACEMENT' (e.g. 'features\\.(\\d+)=blocks.$1.conv'), or build \
         the model the weights were trained with",
        header.tensors.len()
    )
}

/// The module a tensor belongs to: its path without the last segment.
fn module_of(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(module, _)| module)
}

/// The part of a model that `freeze` names.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// Module paths frozen, in model order.
    pub modules: Vec<String>,
    /// Tensors frozen, and tensors in all.
    pub tensors: (usize, usize),
    /// Every module-owned value under the frozen modules: their tensors and batch-norm flags.
    pub group: ParamGroup,
    /// The frozen parameters by id: the group whose learning rate is scaled once they train.
    pub ids: ParamGroup,
}

/// Which modules of `model` the `patterns` name; `None` when there are none.
///
/// A pattern is a module path with `*` standing for any characters within a segment. It names
/// the modules it matches and everything under them (`blocks` and `blocks.*` both name every
/// block); one without a dot also matches a segment anywhere (`conv*` names every conv).
/// `all-but-head` names every module but the one holding the last parameters, which is the
/// output layer of the built-in models.
///
/// # Errors
/// A pattern that names nothing (the error lists the module paths), or patterns that leave
/// nothing to train.
pub fn plan_freeze<M: Module>(model: &M, patterns: &[String]) -> Result<Option<Frozen>, TrainError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let tensors = model_tensors(model);
    let modules: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for (path, _, _) in &tensors {
            let module = module_of(path);
            if !seen.contains(&module) {
                seen.push(module);
            }
        }
        seen
    };
    let head = modules.last().copied().unwrap_or_default();
    let invalid = |message: String| TrainError::Config { origin: "the `freeze` setting".into(), message };
    let mut frozen: Vec<&str> = Vec::new();
    for pattern in patterns {
        let matched: Vec<&str> = if pattern == ALL_BUT_HEAD {
            modules.iter().copied().filter(|m| *m != head).collect()
        } else {
            let regex = glob_regex(pattern).map_err(|e| invalid(format!("`{pattern}`: {e}")))?;
            modules.iter().copied().filter(|m| regex.is_match(m)).collect()
        };
        if matched.is_empty() {
            return Err(invalid(format!(
                "`{pattern}` names no module; the model's modules are {} (or use `{ALL_BUT_HEAD}`)",
                modules.join(", ")
            )));
        }
        for module in matched {
            if !frozen.contains(&module) {
                frozen.push(module);
            }
        }
    }
    frozen.sort_by_key(|m| modules.iter().position(|x| x == m));
    let frozen_tensors: Vec<&(String, Vec<usize>, Option<ParamId>)> =
        tensors.iter().filter(|(path, _, _)| frozen.contains(&module_of(path))).collect();
    if frozen_tensors.len() == tensors.len() {
        return Err(invalid(format!(
            "{} freeze every module, which leaves nothing to train; keep at least the head ({head}) trainable, \
             e.g. `--freeze {ALL_BUT_HEAD}`",
            patterns.join(",")
        )));
    }
    // The variant of a built-in model (`Cnn.`) leads the paths Burn matches groups against.
    let regexes: Vec<String> =
        frozen.iter().map(|m| format!(r"^(?:[A-Z][A-Za-z0-9_]*\.)?{}\.", regex::escape(m))).collect();
    let group = ParamGroup::from_any_regexes(regexes).map_err(|e| invalid(format!("{e:?}")))?;
    let ids = ParamGroup::from_ids(frozen_tensors.iter().filter_map(|(_, _, id)| *id).collect());
    Ok(Some(Frozen {
        modules: frozen.iter().map(|m| m.to_string()).collect(),
        tensors: (frozen_tensors.len(), tensors.len()),
        group,
        ids,
    }))
}

/// The regex of a `freeze` pattern over module paths; see [`plan_freeze`].
fn glob_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let body: String = pattern.split('*').map(regex::escape).collect::<Vec<_>>().join("[^.]*");
    let full = if pattern.contains('.') { format!(r"^{body}(?:\..*)?$") } else { format!(r"(?:^|\.){body}(?:\..*)?$") };
    Regex::new(&full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    use crate::config::TrainConfig;
    use crate::model::build_builtin;

    fn matches(pattern: &str, module: &str) -> bool {
        glob_regex(pattern).unwrap().is_match(module)
    }

    #[test]
    fn patterns_name_modules_and_everything_under_them() {
        assert!(matches("blocks", "blocks.0.conv"));
        assert!(matches("blocks.*", "blocks.1.norm"));
        assert!(matches("blocks.0", "blocks.0.conv"));
        assert!(!matches("blocks.0", "blocks.10.conv"));
        assert!(matches("conv*", "blocks.0.conv"));
        assert!(matches("norm*", "norms.0"));
        assert!(!matches("conv", "blocks.0.convolution"));
        assert!(!matches("output", "blocks.0.conv"));
        assert!(matches("blocks.*.conv", "blocks.3.conv"));
        assert!(!matches("blocks.*.conv", "blocks.3.norm"));
        assert!(!matches("lay", "layers.0"));
    }

    #[test]
    fn paths_lose_only_a_leading_variant() {
        assert_eq!(display_path("Cnn.blocks.0.conv.weight"), "blocks.0.conv.weight");
        assert_eq!(display_path("layers.0.weight"), "layers.0.weight");
        assert_eq!(module_of("output.bias"), "output");
    }

    #[test]
    fn renames_are_checked_when_parsed() {
        assert!(Rename::parse(r"features\.(\d+)=blocks.$1.conv").is_ok());
        let error = Rename::parse("features(=x").unwrap_err().to_string();
        assert!(error.contains("not a regular expression"), "{error}");
        assert!(Rename::parse("no-equals").unwrap_err().to_string().contains("REGEX=REPLACEMENT"));
    }

    /// Writes, with the Python `safetensors` package and numpy alone, the `state_dict` a PyTorch
    /// module mirroring the MLP and the CNN would have (linear weights `[out, in]`, batch norm's
    /// `weight`, `bias`, `running_*` and `num_batches_tracked`), and prints inputs and the outputs
    /// PyTorch's eval-mode forward pass computes for them, in numpy.
    const PYTORCH_WEIGHTS: &str = r#"
import json, sys
import numpy as np
from safetensors.numpy import save_file

folder = sys.argv[1]
rng = np.random.default_rng(7)
f32 = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)

def norm(prefix, n, sd):
    sd[prefix + ".weight"] = (1 + 0.1 * f32(n)).astype(np.float32)
    sd[prefix + ".bias"] = f32(n)
    sd[prefix + ".running_mean"] = f32(n)
    sd[prefix + ".running_var"] = (0.5 + rng.random(n)).astype(np.float32)
    sd[prefix + ".num_batches_tracked"] = np.array(123, dtype=np.int64)

def bn(x, sd, prefix):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g, b, m, v = (sd[prefix + k].reshape(shape) for k in (".weight", ".bias", ".running_mean", ".running_var"))
    return (x - m) / np.sqrt(v + 1e-5) * g + b

relu = lambda x: np.maximum(x, 0)

# The MLP: 6 -> 5 -> 4 -> 3 with batch norm, saved from a wrapper module (`model.` prefix).
mlp = {}
for i, (a, b) in enumerate([(6, 5), (5, 4)]):
    mlp[f"layers.{i}.weight"], mlp[f"layers.{i}.bias"] = f32(b, a), f32(b)
    norm(f"norms.{i}", b, mlp)
mlp["output.weight"], mlp["output.bias"] = f32(3, 4), f32(3)
x = rng.normal(0, 1, (4, 6)).astype(np.float32)
h = x.astype(np.float64)
for i in range(2):
    h = relu(bn(h @ mlp[f"layers.{i}.weight"].T + mlp[f"layers.{i}.bias"], mlp, f"norms.{i}"))
mlp_out = h @ mlp["output.weight"].T + mlp["output.bias"]
save_file({"model." + k: v for k, v in mlp.items()}, folder + "/mlp.safetensors")

# The CNN: [2, 8, 8] images, conv blocks of 3 and 4 channels, a dense layer of 5, 3 outputs.
cnn = {}
for i, (a, b) in enumerate([(2, 3), (3, 4)]):
    cnn[f"blocks.{i}.conv.weight"], cnn[f"blocks.{i}.conv.bias"] = f32(b, a, 3, 3), f32(b)
    norm(f"blocks.{i}.norm", b, cnn)
cnn["dense.0.weight"], cnn["dense.0.bias"] = f32(5, 16), f32(5)
cnn["output.weight"], cnn["output.bias"] = f32(3, 5), f32(3)

def conv3x3(x, w, b):
    n, c, hh, ww = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], hh, ww))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", p[:, :, ky:ky + hh, kx:kx + ww], w[:, :, ky, kx])
    return out + b.reshape(1, -1, 1, 1)

def pool(x):
    n, c, hh, ww = x.shape
    return x.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))

images = rng.normal(0, 1, (3, 2, 8, 8)).astype(np.float32)
h = images.astype(np.float64)
for i in range(2):
    h = pool(relu(bn(conv3x3(h, cnn[f"blocks.{i}.conv.weight"], cnn[f"blocks.{i}.conv.bias"]), cnn, f"blocks.{i}.norm")))
h = relu(h.reshape(3, -1) @ cnn["dense.0.weight"].T + cnn["dense.0.bias"])
cnn_out = h @ cnn["output.weight"].T + cnn["output.bias"]
save_file(cnn, folder + "/cnn.safetensors")

print(json.dumps({
    "mlp": {"input": x.ravel().tolist(), "output": mlp_out.ravel().tolist()},
    "cnn": {"input": images.reshape(3, -1).ravel().tolist(), "output": cnn_out.ravel().tolist()},
}))
"#;

    /// `$REGIMEN_PYTHON` (a relative path with a folder is taken from the repository root), else
    /// `python3`; `None`, loudly, when it lacks `safetensors` and CI does not require it.
    fn python_with_safetensors() -> Option<std::path::PathBuf> {
        let python = std::path::PathBuf::from(std::env::var_os("REGIMEN_PYTHON").unwrap_or_else(|| "python3".into()));
        let python = if python.is_relative() && python.components().count() > 1 {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(python)
        } else {
            python
        };
        let probe = std::process::Command::new(&python).args(["-c", "import safetensors.numpy"]).output();
        if probe.is_ok_and(|o| o.status.success()) {
            return Some(python);
        }
        let message = format!(
            "Python's `safetensors` package is not available from `{}`; run `.ci/setup-python.sh` and set \
             REGIMEN_PYTHON=.ci/.venv/bin/python",
            python.display()
        );
        assert!(std::env::var("REGIMEN_REQUIRE_PYTHON_READERS").as_deref() != Ok("1"), "{message}");
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "\nSKIPPED the PyTorch-weights test: {message}\n");
        None
    }

    fn outputs<M: Network>(model: &M, input: &[f64], rows: usize, device: &Device) -> Vec<f32> {
        let input: Vec<f32> = input.iter().map(|&v| v as f32).collect();
        let width = input.len() / rows;
        let tensor = Tensor::from_data(burn::tensor::TensorData::new(input, [rows, width]), device);
        model.valid().forward(tensor).into_data().try_to_vec::<f32>().expect("f32 outputs")
    }

    fn assert_close(actual: &[f32], expected: &serde_json::Value, what: &str) {
        let expected: Vec<f64> = serde_json::from_value(expected.clone()).expect("a list of numbers");
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (a, e) in actual.iter().zip(&expected) {
            assert!((f64::from(*a) - e).abs() < 1e-4 * (1.0 + e.abs()), "{what}: {actual:?} against {expected:?}");
        }
    }

    #[test]
    fn pytorch_weights_written_by_python_give_pytorchs_outputs_in_the_mlp_and_the_cnn() {
        let Some(python) = python_with_safetensors() else { return };
        let folder = tempfile::tempdir().unwrap();
        let run = std::process::Command::new(python).args(["-c", PYTORCH_WEIGHTS]).arg(folder.path()).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let expected: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let device = Device::default();

        let config =
            TrainConfig { model: "mlp".into(), hidden: Some(vec![5, 4]), batch_norm: true, ..TrainConfig::default() };
        let mlp = build_builtin(&config, &[6], 3, &device).unwrap();
        let file = folder.path().join("mlp.safetensors");
        let unmapped = load_pretrained(mlp, &file, &[]).map(|_| ()).unwrap_err().to_string();
        assert!(unmapped.contains("`model.layers.0.weight` [5, 6]") && unmapped.contains("--init-map"), "{unmapped}");
        let mlp = build_builtin(&config, &[6], 3, &device).unwrap();
        let (mlp, report) = load_pretrained(mlp, &file, &[Rename::parse(r"^model\.=").unwrap()]).unwrap();
        assert_eq!((report.layout, report.loaded.len(), report.new.len()), (Layout::PyTorch, 14, 0), "{report:?}");
        assert_eq!(report.unused, ["norms.0.num_batches_tracked", "norms.1.num_batches_tracked"]);
        let input: Vec<f64> = serde_json::from_value(expected["mlp"]["input"].clone()).unwrap();
        assert_close(&outputs(&mlp, &input, 4, &device), &expected["mlp"]["output"], "MLP");

        let config =
            TrainConfig { model: "cnn".into(), channels: vec![3, 4], hidden: Some(vec![5]), ..TrainConfig::default() };
        let cnn = build_builtin(&config, &[2, 8, 8], 3, &device).unwrap();
        let (cnn, report) = load_pretrained(cnn, &folder.path().join("cnn.safetensors"), &[]).unwrap();
        assert_eq!((report.loaded.len(), report.new.len(), report.skipped.len()), (16, 0, 0), "{report:?}");
        let input: Vec<f64> = serde_json::from_value(expected["cnn"]["input"].clone()).unwrap();
        assert_close(&outputs(&cnn, &input, 3, &device), &expected["cnn"]["output"], "CNN");

        // Another class count: everything but the head loads, and the head is new.
        let cnn = build_builtin(&config, &[2, 8, 8], 4, &device).unwrap();
        let (_, report) = load_pretrained(cnn, &folder.path().join("cnn.safetensors"), &[]).unwrap();
        assert_eq!((report.loaded.len(), report.skipped.len(), report.head_replaced), (14, 2, Some((3, 4))));
    }
}
