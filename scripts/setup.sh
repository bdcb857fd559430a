#!/usr/bin/env bash
# Installs what berth needs on a Debian machine (run as root): containerd,
# runc, nftables, CNI plugins, pigz (containerd unpacks layers with it, faster
# than in Go), busybox-static (the demo image), skopeo and the
# AWS CLI (tests), and checks for a Go toolchain. Safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (berth drives namespaces, cgroups and containerd)" >&2
  exit 1
fi

pkgs=(containerd runc nftables containernetworking-plugins busybox-static skopeo awscli pigz iproute2 make ca-certificates wrk nginx-light)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # bench/alb runs nginx itself, with its own configuration, inside a VPC's
  # namespace; the Debian service it would start holds port 80 on every
  # address, load balancers' loopback addresses included.
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    { systemctl disable --now nginx || service nginx stop; } >/dev/null 2>&1 || true
  fi
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "setup: berth needs Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") or newer on PATH (https://go.dev/dl/)" >&2
    exit 1
  fi
fi
echo "setup: ok ($(go version | cut -d' ' -f3), containerd $(containerd --version | cut -d' ' -f3), runc $(runc --version | head -1 | cut -d' ' -f3))"
