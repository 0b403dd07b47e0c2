//! Bare Burn training loop: the reference point for Regimen's training-throughput benchmark.
//!
//! Trains the benchmark MLP (784-512-512-10, ReLU, batch 128) and the benchmark CNN
//! (conv3x3/32 pad1 - BN - ReLU - maxpool2, conv3x3/64 pad1 - BN - ReLU - maxpool2,
//! linear 64*7*7 -> 10; batch 64) with Adam (lr 1e-3) and cross-entropy on random
//! in-memory data, using nothing but Burn itself on `Autodiff<Flex>`
//! (`Device::flex().autodiff()`), and prints one JSON line per model:
//!
//! `{"impl":"burn-bare","model":"mlp","batch":128,"steps":..,"seconds":..,"samples_per_sec":..,"threads":T}`
//!
//! The loss is read back as an `f32` every step (PyTorch's `loss.item()` counterpart).
//!
//! Modes (see `--help`): the default `train` mode is the benchmark; `--mode phases`
//! splits every timed step into forward / loss read / backward / grads / optimizer;
//! `--mode layers` times each layer in isolation (forward, and forward+backward).
//! With the `count-alloc` cargo feature a counting global allocator reports heap
//! allocations per step.

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

#[cfg(feature = "count-alloc")]
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub static ALLOCS: AtomicU64 = AtomicU64::new(0);
    pub static BYTES: AtomicU64 = AtomicU64::new(0);

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(layout.size() as u64, Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(layout.size() as u64, Relaxed);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(new_size as u64, Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn snapshot() -> (u64, u64) {
        (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
    }
}

const LR: f64 = 1e-3;
const CLASSES: usize = 10;
/// Distinct random batches generated up front and cycled through.
const POOL: usize = 4;

// ----------------------------------------------------------------------------------------------
// Models
// ----------------------------------------------------------------------------------------------

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(784, 512).init(device),
            fc2: LinearConfig::new(512, 512).init(device),
            fc3: LinearConfig::new(512, CLASSES).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}

#[derive(Module, Debug)]
struct Cnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    pool: MaxPool2d,
    fc: Linear,
}

impl Cnn {
    fn new(device: &Device) -> Self {
        let pad = || PaddingConfig2d::Explicit(1, 1, 1, 1);
        Self {
            conv1: Conv2dConfig::new([1, 32], [3, 3]).with_padding(pad()).init(device),
            bn1: BatchNormConfig::new(32).init(device),
            conv2: Conv2dConfig::new([32, 64], [3, 3]).with_padding(pad()).init(device),
            bn2: BatchNormConfig::new(64).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(64 * 7 * 7, CLASSES).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.bn1.forward(self.conv1.forward(x))));
        let x = self.pool.forward(relu(self.bn2.forward(self.conv2.forward(x))));
        let [b, c, h, w] = x.dims();
        self.fc.forward(x.reshape([b, c * h * w]))
    }
}

/// Regimen's BasicBlock (see crates/regimen-train/src/model/resnet.rs), written with Burn's
/// modules only.
#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    projection: Option<(Conv2d, BatchNorm)>,
}

fn conv(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

impl Block {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            projection: (stride != 1 || cin != cout)
                .then(|| (conv(cin, cout, 1, stride, device), BatchNormConfig::new(cout).init(device))),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.projection {
            Some((c, n)) => n.forward(c.forward(x.clone())),
            None => x.clone(),
        };
        let y = relu(self.bn1.forward(self.conv1.forward(x)));
        relu(self.bn2.forward(self.conv2.forward(y)) + shortcut)
    }
}

/// `--model resnet` with Regimen's defaults: depth 2, width 16 (14 layers), on 3×32×32.
#[derive(Module, Debug)]
struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<Block>,
    fc: Linear,
}

impl ResNet {
    fn new(device: &Device) -> Self {
        let (depth, width) = (2, 16);
        let mut blocks = Vec::new();
        let mut cin = width;
        for stage in 0..3 {
            for b in 0..depth {
                let cout = width << stage;
                blocks.push(Block::new(cin, cout, if stage > 0 && b == 0 { 2 } else { 1 }, device));
                cin = cout;
            }
        }
        Self {
            stem: conv(3, width, 3, 1, device),
            stem_bn: BatchNormConfig::new(width).init(device),
            blocks,
            fc: LinearConfig::new(cin, CLASSES).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.stem_bn.forward(self.stem.forward(x)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        self.fc.forward(x.mean_dim(3).mean_dim(2).reshape([b, c]))
    }
}

// ----------------------------------------------------------------------------------------------
// Data
// ----------------------------------------------------------------------------------------------

/// SplitMix64: deterministic labels without pulling in an RNG crate.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn labels(rng: &mut SplitMix, n: usize, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = (0..n).map(|_| (rng.next() % CLASSES as u64) as i64).collect();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// One batch in host memory, as a real loop holds its data: each step copies it into tensors.
struct HostBatch<const D: usize> {
    shape: [usize; D],
    x: Vec<f32>,
    y: Vec<i64>,
}

impl<const D: usize> HostBatch<D> {
    /// The batch as tensors: the copy from host memory that every loop over real data makes.
    fn tensors(&self, device: &Device) -> (Tensor<D>, Tensor<1, Int>) {
        let x = Tensor::from_data(TensorData::new(self.x.clone(), self.shape), device);
        let y = Tensor::from_data(TensorData::new(self.y.clone(), [self.y.len()]), device);
        (x, y)
    }
}

fn batches<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Vec<HostBatch<D>> {
    let mut rng = SplitMix(seed);
    (0..POOL)
        .map(|_| {
            let x = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), device);
            let x = x.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data");
            let y = (0..shape[0]).map(|_| (rng.next() % CLASSES as u64) as i64).collect();
            HostBatch { shape, x, y }
        })
        .collect()
}

// ----------------------------------------------------------------------------------------------
// Training
// ----------------------------------------------------------------------------------------------

/// Time spent in each phase of the timed steps (`--mode phases`).
#[derive(Default)]
struct Phases {
    forward: Duration,
    loss_read: Duration,
    backward: Duration,
    grads: Duration,
    optim: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Train,
    Phases,
}

struct RunResult {
    seconds: f64,
    last_loss: f32,
    phases: Option<Phases>,
    allocs: Option<(u64, u64)>,
}

fn train<M, const D: usize>(
    mut model: M,
    forward: impl Fn(&M, Tensor<D>) -> Tensor<2>,
    data: &[HostBatch<D>],
    warmup: usize,
    steps: usize,
    mode: Mode,
    device: &Device,
) -> RunResult
where
    M: Module,
{
    let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(device);
    // PyTorch's Adam defaults (Burn's default epsilon is 1e-5).
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut last_loss = f32::NAN;
    let mut phases = Phases::default();
    let mut start = Instant::now();
    #[allow(unused_mut, unused_assignments)]
    let mut alloc_start = (0u64, 0u64);

    for step in 0..warmup + steps {
        if step == warmup {
            device.sync().expect("sync");
            #[cfg(feature = "count-alloc")]
            {
                alloc_start = alloc_count::snapshot();
            }
            start = Instant::now();
        }
        let timed = step >= warmup;
        let (x, y) = data[step % data.len()].tensors(device);

        if mode == Mode::Train || !timed {
            let logits = forward(&model, x);
            let loss = loss_fn.forward(logits, y);
            last_loss = loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(LR, model, grads);
        } else {
            // Flex executes eagerly on the calling thread (plus its rayon pool), so wall
            // time between these points is the cost of the phase; `sync` is belt and braces.
            let t0 = Instant::now();
            let logits = forward(&model, x);
            let loss = loss_fn.forward(logits, y);
            device.sync().expect("sync");
            let t1 = Instant::now();
            last_loss = loss.clone().into_scalar::<f32>();
            let t2 = Instant::now();
            let grads = loss.backward();
            device.sync().expect("sync");
            let t3 = Instant::now();
            let grads = GradientsParams::from_grads(grads, &model);
            let t4 = Instant::now();
            model = optim.step(LR, model, grads);
            device.sync().expect("sync");
            let t5 = Instant::now();
            phases.forward += t1 - t0;
            phases.loss_read += t2 - t1;
            phases.backward += t3 - t2;
            phases.grads += t4 - t3;
            phases.optim += t5 - t4;
        }
    }
    device.sync().expect("sync");
    let seconds = start.elapsed().as_secs_f64();
    #[allow(unused_mut)]
    let mut allocs = None;
    #[cfg(feature = "count-alloc")]
    {
        let (a, b) = alloc_count::snapshot();
        allocs = Some((a - alloc_start.0, b - alloc_start.1));
    }
    let _ = alloc_start;
    assert!(last_loss.is_finite(), "loss is not finite: {last_loss}");
    RunResult {
        seconds,
        last_loss,
        phases: (mode == Mode::Phases).then_some(phases),
        allocs,
    }
}

// ----------------------------------------------------------------------------------------------
// Per-layer micro benchmark (`--mode layers`)
// ----------------------------------------------------------------------------------------------

/// Times `f` (forward) and forward + `sum().backward()` in isolation, `reps` times each after
/// `reps / 4 + 1` warm-up repetitions. Returns (forward ms, forward+backward ms) per call.
fn time_layer<const D: usize, const E: usize>(
    input: &Tensor<D>,
    needs_input_grad: bool,
    f: impl Fn(Tensor<D>) -> Tensor<E>,
    reps: usize,
) -> (f64, f64) {
    let run = |backward: bool| {
        let x = if needs_input_grad {
            input.clone().require_grad()
        } else {
            input.clone()
        };
        let out = f(x);
        if backward {
            let grads = out.sum().backward();
            std::hint::black_box(grads);
        } else {
            std::hint::black_box(out);
        }
    };
    let mut res = [0.0; 2];
    for (i, backward) in [false, true].into_iter().enumerate() {
        for _ in 0..reps / 4 + 1 {
            run(backward);
        }
        let t = Instant::now();
        for _ in 0..reps {
            run(backward);
        }
        res[i] = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    }
    (res[0], res[1])
}

fn layers(model: &str, threads: usize, reps: usize, device: &Device) {
    let print = |name: &str, (fwd, fwdbwd): (f64, f64)| {
        println!(
            "{{\"impl\":\"burn-bare\",\"kind\":\"layer\",\"model\":\"{model}\",\"layer\":\"{name}\",\
             \"fwd_ms\":{fwd:.4},\"fwd_bwd_ms\":{fwdbwd:.4},\"bwd_ms\":{:.4},\"threads\":{threads}}}",
            fwdbwd - fwd
        );
    };
    match model {
        "mlp" => {
            let m = Mlp::new(device);
            let x = Tensor::<2>::random([128, 784], Distribution::Normal(0.0, 1.0), device);
            let h = Tensor::<2>::random([128, 512], Distribution::Normal(0.0, 1.0), device);
            print("fc1 784x512", time_layer(&x, false, |t| m.fc1.forward(t), reps));
            print("fc2 512x512", time_layer(&h, true, |t| m.fc2.forward(t), reps));
            print("fc3 512x10", time_layer(&h, true, |t| m.fc3.forward(t), reps));
            print("relu [128,512]", time_layer(&h, true, relu, reps));
            let logits = Tensor::<2>::random([128, CLASSES], Distribution::Normal(0.0, 1.0), device);
            let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(device);
            let y = labels(&mut SplitMix(7), 128, device);
            print(
                "cross_entropy [128,10]",
                time_layer(&logits, true, |t| loss_fn.forward(t, y.clone()), reps),
            );
        }
        "cnn" => {
            let m = Cnn::new(device);
            let rnd = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Normal(0.0, 1.0), device);
            let x = rnd([64, 1, 28, 28]);
            let a1 = rnd([64, 32, 28, 28]);
            let p1 = rnd([64, 32, 14, 14]);
            let a2 = rnd([64, 64, 14, 14]);
            print("conv1 1->32 28x28", time_layer(&x, false, |t| m.conv1.forward(t), reps));
            print("bn1 [64,32,28,28]", time_layer(&a1, true, |t| m.bn1.forward(t), reps));
            print("relu [64,32,28,28]", time_layer(&a1, true, relu, reps));
            print("maxpool1 [64,32,28,28]", time_layer(&a1, true, |t| m.pool.forward(t), reps));
            print("conv2 32->64 14x14", time_layer(&p1, true, |t| m.conv2.forward(t), reps));
            print("bn2 [64,64,14,14]", time_layer(&a2, true, |t| m.bn2.forward(t), reps));
            print("relu [64,64,14,14]", time_layer(&a2, true, relu, reps));
            print("maxpool2 [64,64,14,14]", time_layer(&a2, true, |t| m.pool.forward(t), reps));
            let f = Tensor::<2>::random([64, 64 * 7 * 7], Distribution::Normal(0.0, 1.0), device);
            print("fc 3136x10", time_layer(&f, true, |t| m.fc.forward(t), reps));
        }
        other => panic!("unknown model {other}"),
    }
}

// ----------------------------------------------------------------------------------------------
// CLI
// ----------------------------------------------------------------------------------------------

const USAGE: &str = "\
burn-bare-bench [--model mlp|cnn|resnet|mlp,cnn] [--threads T] [--warmup W] [--steps S] [--seed N]
                [--mode train|phases|layers] [--reps R]

Prints one JSON line per model. --threads sets RAYON_NUM_THREADS (Flex's rayon pool and
gemm's parallelism both use the global rayon pool) unless that variable is already set.";

fn main() {
    let mut models = vec!["mlp".to_string(), "cnn".to_string()];
    let mut threads: Option<usize> = None;
    let mut warmup: Option<usize> = None;
    let mut steps: Option<usize> = None;
    let mut seed = 42u64;
    let mut mode = "train".to_string();
    let mut reps = 20usize;

    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--model" | "--models" => models = val().split(',').map(str::to_string).collect(),
            "--threads" => threads = Some(val().parse().expect("--threads")),
            "--warmup" => warmup = Some(val().parse().expect("--warmup")),
            "--steps" => steps = Some(val().parse().expect("--steps")),
            "--seed" => seed = val().parse().expect("--seed"),
            "--mode" => mode = val(),
            "--reps" => reps = val().parse().expect("--reps"),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => panic!("unknown argument {other}\n{USAGE}"),
        }
    }

    // The rayon global pool is created lazily on first use and reads RAYON_NUM_THREADS then.
    // Nothing has touched rayon yet and no other thread exists, so setting it here is sound.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let t = threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        });
        // SAFETY: single-threaded at this point (see above).
        unsafe { std::env::set_var("RAYON_NUM_THREADS", t.to_string()) };
    }
    let threads: usize = std::env::var("RAYON_NUM_THREADS").unwrap().parse().expect("RAYON_NUM_THREADS");

    let device = Device::flex().autodiff();
    device.seed(seed);

    for model in &models {
        if mode == "layers" {
            layers(model, threads, reps, &device);
            continue;
        }
        let m = match mode.as_str() {
            "train" => Mode::Train,
            "phases" => Mode::Phases,
            other => panic!("unknown mode {other}\n{USAGE}"),
        };
        let (batch, res) = match model.as_str() {
            "mlp" => {
                let (w, s) = (warmup.unwrap_or(10), steps.unwrap_or(100));
                let data = batches([128, 784], seed, &device);
                (128, train(Mlp::new(&device), Mlp::forward, &data, w, s, m, &device))
            }
            "cnn" => {
                let (w, s) = (warmup.unwrap_or(5), steps.unwrap_or(30));
                let data = batches([64, 1, 28, 28], seed, &device);
                (64, train(Cnn::new(&device), Cnn::forward, &data, w, s, m, &device))
            }
            "resnet" => {
                let (w, s) = (warmup.unwrap_or(3), steps.unwrap_or(20));
                let data = batches([64, 3, 32, 32], seed, &device);
                (64, train(ResNet::new(&device), ResNet::forward, &data, w, s, m, &device))
            }
            other => panic!("unknown model {other}\n{USAGE}"),
        };
        let n = match model.as_str() {
            "mlp" => steps.unwrap_or(100),
            "resnet" => steps.unwrap_or(20),
            _ => steps.unwrap_or(30),
        };
        let mut line = format!(
            "{{\"impl\":\"burn-bare\",\"model\":\"{model}\",\"batch\":{batch},\"steps\":{n},\
             \"seconds\":{:.6},\"samples_per_sec\":{:.2},\"threads\":{threads},\"final_loss\":{:.5}",
            res.seconds,
            (batch * n) as f64 / res.seconds,
            res.last_loss
        );
        if let Some(p) = &res.phases {
            let ms = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
            line += &format!(
                ",\"phase_ms\":{{\"forward\":{:.3},\"loss_read\":{:.3},\"backward\":{:.3},\
                 \"grads_params\":{:.3},\"optim\":{:.3}}}",
                ms(p.forward),
                ms(p.loss_read),
                ms(p.backward),
                ms(p.grads),
                ms(p.optim)
            );
        }
        if let Some((a, b)) = res.allocs {
            line += &format!(
                ",\"allocs_per_step\":{:.1},\"alloc_mib_per_step\":{:.2}",
                a as f64 / n as f64,
                b as f64 / n as f64 / (1 << 20) as f64
            );
        }
        println!("{line}}}");
    }
}
