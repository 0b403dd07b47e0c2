//! Turning `--device cpu|cuda[:N]|wgpu` into a Burn device.
//!
//! The flex CPU backend is always compiled in; GPU backends are Cargo features so that a default
//! build needs no GPU toolchain. Asking for a backend the binary was built without is an error that
//! says how to rebuild, never a silent fallback to the CPU.

use burn::tensor::Device;

use crate::error::TrainError;

/// Parses a device spec into a Burn device (without autodiff).
pub fn parse_device(spec: &str) -> Result<Device, TrainError> {
    let error = |message: String| TrainError::Device { spec: spec.to_string(), message };
    let (kind, index) = match spec.split_once(':') {
        Some((kind, index)) => {
            let index: usize =
                index.parse().map_err(|_| error(format!("`{index}` is not a device index; write e.g. `cuda:0`")))?;
            (kind, Some(index))
        }
        None => (spec, None),
    };
    match kind {
        "cpu" if index.is_none() || index == Some(0) => Ok(Device::flex()),
        "cpu" => Err(error("there is one CPU device; write `cpu`".into())),
        "cuda" => cuda(index.unwrap_or(0)).map_err(error),
        "wgpu" => wgpu(index).map_err(error),
        other => Err(error(format!("unknown device kind `{other}`; use cpu, cuda[:N] or wgpu"))),
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, String> {
    match cuda_runtime_problem(index) {
        Some(problem) => Err(problem),
        None => Ok(Device::cuda(index)),
    }
}

/// What stops `cuda:{index}` from running on this machine, if anything. Burn's CUDA backend loads
/// the driver's library and NVRTC (it compiles its kernels at run time, against the toolkit's
/// headers) only at the first operation, and panics there when one is missing; checking up front
/// turns that into one message saying what to install.
#[cfg(any(feature = "cuda", test))]
fn cuda_runtime_problem(index: usize) -> Option<String> {
    // The names cudarc, under Burn, loads these libraries by.
    let driver = ["libcuda.so", "libcuda.so.1"];
    let nvrtc = ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11", "libnvrtc.so.1"];
    let open = |names: &[&str]| {
        // SAFETY: loading a system library runs its initializers; the driver's and NVRTC's are the
        // ones Burn would run on its first CUDA operation anyway.
        names.iter().find_map(|&name| unsafe { libloading::Library::new(name) }.ok())
    };
    let Some(driver) = open(&driver) else {
        return Some(
            "the NVIDIA driver's libcuda.so was not found: install the driver (`nvidia-smi` should list \
             the GPU), or use --device cpu"
                .into(),
        );
    };
    type CuInit = unsafe extern "C" fn(u32) -> i32;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut i32) -> i32;
    let mut count = 0i32;
    // SAFETY: both symbols have these C signatures in every CUDA driver API version; `count` is a
    // valid pointer for the call's duration.
    let status = unsafe {
        match (driver.get::<CuInit>(b"cuInit\0"), driver.get::<CuDeviceGetCount>(b"cuDeviceGetCount\0")) {
            (Ok(init), Ok(device_count)) => match init(0) {
                0 => device_count(&mut count),
                failed => failed,
            },
            _ => return Some("libcuda.so lacks cuInit or cuDeviceGetCount; reinstall the NVIDIA driver".into()),
        }
    };
    if status != 0 {
        return Some(format!(
            "the CUDA driver did not start (CUDA error {status}); check `nvidia-smi` and that the driver \
             matches the kernel module"
        ));
    }
    if index >= count.max(0) as usize {
        return Some(format!("this machine has {count} CUDA device(s), so cuda:{index} does not exist"));
    }
    if open(&nvrtc).is_none() {
        return Some(
            "NVRTC (libnvrtc.so) was not found; Burn compiles its CUDA kernels with it: install the CUDA \
             toolkit (or pip's nvidia-cuda-nvrtc) and put its lib folder on LD_LIBRARY_PATH"
                .into(),
        );
    }
    // The folder cubecl compiles against, chosen by its own rule.
    let toolkit = std::env::var_os("CUDA_PATH").map(std::path::PathBuf::from).or_else(|| {
        [("/usr/local/cuda", "/usr/local/cuda"), ("/opt/cuda", "/opt/cuda"), ("/usr", "/usr/bin/nvcc")]
            .into_iter()
            .find(|(_, marker)| std::path::Path::new(marker).exists())
            .map(|(folder, _)| std::path::PathBuf::from(folder))
    });
    match toolkit {
        Some(folder) if folder.join("include").join("cuda.h").is_file() => None,
        Some(folder) => Some(format!(
            "the CUDA toolkit at {} has no include/cuda.h (Burn's kernels are compiled against its \
             headers): install the toolkit's headers or set CUDA_PATH to a complete toolkit",
            folder.display()
        )),
        None => Some(
            "the CUDA toolkit was not found (Burn's kernels are compiled against its headers): install \
             it or set CUDA_PATH to its folder"
                .into(),
        ),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device, String> {
    Err("this build has no CUDA support; rebuild with `cargo build --release --features cuda`".into())
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device, String> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        Some(i) => DeviceKind::DiscreteGpu(i),
        None => DeviceKind::DefaultDevice,
    }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Result<Device, String> {
    Err("this build has no wgpu support; rebuild with `cargo build --release --features wgpu`".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available() {
        assert!(parse_device("cpu").is_ok());
        assert!(parse_device("cpu:0").is_ok());
    }

    #[test]
    fn bad_specs_say_what_is_accepted() {
        let message = parse_device("tpu").unwrap_err().to_string();
        assert!(message.contains("cpu, cuda[:N] or wgpu"), "{message}");
        let message = parse_device("cuda:x").unwrap_err().to_string();
        assert!(message.contains("`x` is not a device index"), "{message}");
    }

    #[test]
    fn a_cuda_device_that_cannot_run_is_a_message_not_a_panic() {
        // No machine has usize::MAX devices: without a driver the message names the driver's
        // library, with one it names the device count.
        let problem = cuda_runtime_problem(usize::MAX).expect("cuda:MAX cannot be usable");
        assert!(
            problem.contains("libcuda.so") || problem.contains("CUDA device(s)") || problem.contains("CUDA error"),
            "{problem}"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_missing_gpu_backend_says_how_to_rebuild() {
        let message = parse_device("cuda:1").unwrap_err().to_string();
        assert!(message.contains("--features cuda"), "{message}");
    }
}
