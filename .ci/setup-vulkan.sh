#!/usr/bin/env bash
# Mesa's software Vulkan driver (lavapipe, Debian's mesa-vulkan-drivers) and the Vulkan loader, for
# the `--device wgpu` test: wgpu finds lavapipe as a CPU adapter, so no GPU is needed. Installed
# with apt when missing; prints the adapter it sees.
set -euo pipefail
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || ! ldconfig -p | grep -q libvulkan.so.1; then
    echo "installing mesa-vulkan-drivers and libvulkan1 (apt)" >&2
    sudo_if_needed=()
    [[ $(id -u) == 0 ]] || sudo_if_needed=(sudo)
    "${sudo_if_needed[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_if_needed[@]}" apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
ls /usr/share/vulkan/icd.d/lvp_icd*.json >&2
