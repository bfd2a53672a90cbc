#!/usr/bin/env bash
# What `make test` needs on the machine, installed when missing, so that the README's `make test` works on a
# fresh Debian/Ubuntu machine: the real programs the tests start (Debian packages, apt; sudo when not root) and
# a kube-apiserver + etcd for the Kubernetes tests (test/kube/kube-test-assets.sh: at once when
# KUBEBUILDER_ASSETS or its cache holds them, about 9 minutes the first time). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need docker-registry docker-registry
need htpasswd apache2-utils
need skopeo skopeo
need openssl openssl
need redis-server redis-server
need promtool prometheus
need kubectl kubernetes-client
need curl curl
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "provision: missing ${missing[*]} and no apt-get to install them" >&2; exit 1; }
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  echo "provision: installing ${missing[*]} ($sudo apt-get install)" >&2
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The harness (test/support/kube-apiserver.ts) reads the assets from KUBEBUILDER_ASSETS or this same cache.
bash test/kube/kube-test-assets.sh >/dev/null
