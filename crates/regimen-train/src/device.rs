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
    Ok(Device::cuda(index))
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

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_missing_gpu_backend_says_how_to_rebuild() {
        let message = parse_device("cuda:1").unwrap_err().to_string();
        assert!(message.contains("--features cuda"), "{message}");
    }
}
