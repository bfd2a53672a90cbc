#!/usr/bin/env bash
# kube-test-assets.sh: envtest-style binaries for a real Kubernetes API server on Debian 12 (bookworm).
#
# The project's own copy of the assets builder: .ci/run runs it before `make test`, and
# test/support/kube-apiserver.ts starts the binaries it leaves (see docs/testing.md#kubernetes-api-server).
#
# What it does: makes sure CACHE_DIR/bin/kube-apiserver (Kubernetes v1.20.2) and CACHE_DIR/bin/etcd
# (3.4.x) exist, then prints the absolute path of CACHE_DIR/bin as the last line of stdout. Progress goes
# to stderr. That directory has the layout envtest expects, so it can be used as KUBEBUILDER_ASSETS:
#     export KUBEBUILDER_ASSETS="$(bash test/kube/kube-test-assets.sh)"
#
# Why it builds: Debian has no kube-apiserver binary package, and nothing outside Debian's package
# archive can be downloaded. So kube-apiserver is built from Debian's own `kubernetes` source package
# (1.20.5+really1.20.2: the full upstream v1.20.2 tree with vendor/) using Debian's Go 1.19. The vendored
# github.com/modern-go/reflect2 v1.0.1 crashes the server under Go >= 1.18 ("fatal error: fault" in
# UnsafeMapType.UnsafeIterate) on the first custom-resource write, so it is replaced with Debian's
# reflect2 1.0.2 before the build. etcd comes from Debian's etcd-server package. If that package is
# installed, its binary is copied; otherwise the .deb is unpacked without being installed, so no etcd
# system service gets started.
#
# Cost: the first run takes about 9 minutes on 2 cores. It downloads about 50 MB, needs about 3 GB of
# temporary disk and up to 1.5 GB of RAM. Later runs return at once. After a successful run only the
# two binaries are kept (about 130 MB); the source tree, Go build cache and downloads are deleted. If a
# run is interrupted, the next one continues from where it stopped.
# Root (or passwordless sudo) is needed only to install missing build tools: golang-1.19-go, make, rsync.
#
# Usage: kube-test-assets.sh [CACHE_DIR]   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kube-test-assets)
#   KUBEBUILDER_ASSETS  if this already names a directory with executable kube-apiserver and etcd, that
#                       directory is printed and nothing else is done (the envtest convention).
#   KTA_DEBIAN_MIRROR   Debian mirror for the source package (default: the first Debian mirror that the
#                       machine's own apt sources name).

set -Eeuo pipefail
exec 3>&1 1>&2 # fd 3 carries the single result line; everything else goes to stderr

readonly KUBE_VERSION=v1.20.2
readonly SRC_PACKAGE=kubernetes
readonly SRC_ORIG=kubernetes_1.20.5+really1.20.2.orig.tar.gz
readonly SRC_ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
readonly SUITE=bookworm
readonly GO_PACKAGE=golang-1.19-go
readonly GO_ROOT=/usr/lib/go-1.19 # where golang-1.19-go installs; newer Go is untested for this tree
readonly REFLECT2_PACKAGE=golang-github-modern-go-reflect2-dev
readonly REFLECT2_MIN_VERSION=1.0.2
readonly REFLECT2_VENDOR=vendor/github.com/modern-go/reflect2
readonly ETCD_PACKAGE=etcd-server
readonly ETCD_SERIES=3.4.
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly BUILD_DISK_KB=$((3 * 1024 * 1024))
# The machine's own Debian mirror, as its apt sources name it (deb822 .sources or one-line .list files).
system_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f"
	done | head -n 1
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' "$f"
	done | head -n 1
}
MIRROR=${KTA_DEBIAN_MIRROR:-$(system_mirror | head -n 1)}
MIRROR=${MIRROR%/}
readonly MIRROR # checked only when the source package is fetched: cached binaries need no mirror

log() { printf 'kube-test-assets: %s\n' "$*" >&2; }
die() {
	printf 'kube-test-assets: error: %s\n' "$*" >&2
	exit 1
}
# shellcheck disable=SC2317 # called through the ERR trap
on_error() {
	local rc=$? cmd=$BASH_COMMAND line=${BASH_LINENO[0]}
	# Report once, from the main shell; a failing subshell only passes its status up.
	[ "$BASH_SUBSHELL" -eq 0 ] || exit "$rc"
	printf 'kube-test-assets: error: "%s" failed with status %s (line %s)\n' "$cmd" "$rc" "$line" >&2
	exit "$rc"
}
trap on_error ERR

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p;}' "$0"; }

case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
-*) die "unknown option '$1' (usage: kube-test-assets.sh [CACHE_DIR])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: kube-test-assets.sh [CACHE_DIR])"

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
	if [ -f "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] &&
		[ -f "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
		log "KUBEBUILDER_ASSETS already provides kube-apiserver and etcd"
		(cd "$KUBEBUILDER_ASSETS" && pwd -P) >&3
		exit 0
	fi
	log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks an executable kube-apiserver or etcd; using the cache"
fi

CACHE_DIR=${1:-${XDG_CACHE_HOME:-${HOME:?HOME is not set: pass CACHE_DIR}/.cache}/kube-test-assets}
mkdir -p "$CACHE_DIR" || die "cannot create cache directory $CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd -P)
[ "$CACHE_DIR" != / ] || die "refusing to use / as the cache directory"
readonly BIN=$CACHE_DIR/bin
readonly WORK=$CACHE_DIR/.kube-test-assets-build # everything in here is deleted after success
readonly SRC=$WORK/src

is_kube_apiserver() { [ -f "$1" ] && [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "Kubernetes $KUBE_VERSION" ]; }
is_etcd() { [ -f "$1" ] && [ -x "$1" ] && [[ $("$1" --version 2>/dev/null) == "etcd Version: $ETCD_SERIES"* ]]; }
finished() { is_kube_apiserver "$BIN/kube-apiserver" && is_etcd "$BIN/etcd"; }
succeed() {
	log "kube-apiserver $KUBE_VERSION and etcd are ready in $BIN"
	printf '%s\n' "$BIN" >&3
	exit 0
}

finished && succeed

# One run at a time per cache: a second caller waits, then finds the work done.
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
	log "another run holds $CACHE_DIR/.lock; waiting for it"
	flock 9
fi
finished && succeed

started=$SECONDS
mkdir -p "$BIN" "$WORK"
if [ -r /etc/os-release ] && ! grep -q '^VERSION_CODENAME=bookworm$' /etc/os-release; then
	log "warning: this was made for Debian 12 (bookworm); Go 1.19 and the sources come from bookworm"
fi

# ---- apt helpers -------------------------------------------------------------------------------
APT_UPDATED=
APT_SANDBOX=()
# As root, apt downloads as user _apt, which cannot enter a cache under a private home; apt then
# falls back to root with a warning. Say so up front instead.
[ "$(id -u)" -ne 0 ] || APT_SANDBOX=(-o APT::Sandbox::User=root)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "root or passwordless sudo is needed to run: $*"
	fi
}

apt_update() {
	[ -z "$APT_UPDATED" ] || return 0
	log "apt-get update"
	local out
	out=$(as_root apt-get -qq update 2>&1) || {
		printf '%s\n' "$out" >&2
		die "apt-get update failed"
	}
	APT_UPDATED=1
}

has_candidate() { [[ $(apt-cache policy "$1" 2>/dev/null) == *"Candidate: "[!\(]* ]]; }

apt_install() {
	local pkg logf=$WORK/apt-install.log
	for pkg in "$@"; do has_candidate "$pkg" || apt_update; done
	log "apt-get install $*"
	local cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
	if ! as_root "${cmd[@]}" >"$logf" 2>&1; then
		# Outdated package lists can name files the mirror no longer has.
		[ -z "$APT_UPDATED" ] && apt_update && as_root "${cmd[@]}" >"$logf" 2>&1 && return 0
		tail -n 20 "$logf" >&2
		die "apt-get install $* failed (log: $logf)"
	fi
}

# apt_download PACKAGE DIR: fetch PACKAGE's .deb into DIR without installing it; sets DEB to its path.
DEB=
apt_download() {
	local pkg=$1 dir=$2 debs
	mkdir -p "$dir"
	rm -f "$dir/${pkg}_"*.deb
	has_candidate "$pkg" || apt_update
	if ! (cd "$dir" && apt-get -qq "${APT_SANDBOX[@]}" download "$pkg") 2>"$dir/download.err"; then
		# Lists that are missing or outdated name files the mirror no longer has: update, try again.
		[ -z "$APT_UPDATED" ] || { cat "$dir/download.err" >&2; die "apt-get download $pkg failed"; }
		apt_update
		(cd "$dir" && apt-get -qq "${APT_SANDBOX[@]}" download "$pkg") || die "apt-get download $pkg failed"
	fi
	debs=("$dir/${pkg}_"*.deb)
	[ -f "${debs[0]}" ] || die "apt-get download $pkg left no .deb in $dir"
	DEB=${debs[0]}
}

# deb-src is enabled only in a private apt configuration inside the work directory; the system's
# sources, lists and caches are left alone (apt.conf.d settings such as proxies still apply).
private_apt() {
	local a=$WORK/apt
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d"
	printf 'deb-src [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$a/sources.list"
	apt-get -qq "${APT_SANDBOX[@]}" \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" \
		-o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/sources.list.d" \
		"$@" >&2
}

install_bin() { # SOURCE NAME: copy, then rename, so bin/ never holds a half-written binary
	install -m 0755 "$1" "$BIN/.$2.partial"
	mv -f "$BIN/.$2.partial" "$BIN/$2"
}

# ---- etcd --------------------------------------------------------------------------------------
provide_etcd() {
	is_etcd "$BIN/etcd" && return 0
	local from=/usr/bin/etcd deb
	if [ "$(dpkg-query -W -f='${Status}' "$ETCD_PACKAGE" 2>/dev/null)" = "install ok installed" ] && is_etcd "$from"; then
		log "copying etcd from the installed $ETCD_PACKAGE package"
	else
		apt_download "$ETCD_PACKAGE" "$WORK/debs"
		deb=$DEB
		log "unpacking etcd from ${deb##*/}"
		rm -rf "$WORK/etcd-root"
		dpkg-deb -x "$deb" "$WORK/etcd-root"
		from=$WORK/etcd-root/usr/bin/etcd
		is_etcd "$from" || die "${deb##*/} does not provide etcd ${ETCD_SERIES}x (got: $("$from" --version 2>&1 | head -n 1))"
	fi
	install_bin "$from" etcd
}

# ---- kube-apiserver ----------------------------------------------------------------------------
check_disk() {
	local avail
	avail=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
	[ "${avail:-0}" -ge "$BUILD_DISK_KB" ] ||
		die "building kube-apiserver needs about 3 GiB free in $WORK; only $((${avail:-0} / 1024)) MiB available"
}

ensure_build_tools() {
	local need=()
	[ -x "$GO_ROOT/bin/go" ] || need+=("$GO_PACKAGE")
	command -v make >/dev/null 2>&1 || need+=(make)
	command -v rsync >/dev/null 2>&1 || need+=(rsync) # used by the hack/ build scripts
	[ -f "$KEYRING" ] || need+=(debian-archive-keyring)
	[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
	[ -x "$GO_ROOT/bin/go" ] || die "$GO_PACKAGE did not provide $GO_ROOT/bin/go"
}

orig_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d ' ' -f 1)" = "$SRC_ORIG_SHA256" ]; }

fetch_source() {
	local dl=$WORK/download
	orig_ok "$dl/$SRC_ORIG" && return 0
	[ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources; set KTA_DEBIAN_MIRROR"
	log "downloading Debian source package $SRC_PACKAGE ($SUITE main) from $MIRROR"
	rm -rf "$dl"
	mkdir -p "$dl"
	private_apt update --error-on=any || die "apt-get update for 'deb-src $MIRROR $SUITE main' failed"
	(cd "$dl" && private_apt source --download-only "$SRC_PACKAGE") || die "apt-get source $SRC_PACKAGE failed"
	[ -f "$dl/$SRC_ORIG" ] || die "Debian's $SRC_PACKAGE source package has no $SRC_ORIG (got: $(ls "$dl"))"
	orig_ok "$dl/$SRC_ORIG" || die "$SRC_ORIG does not have the expected sha256 $SRC_ORIG_SHA256"
}

extract_source() {
	[ -f "$WORK/.extracted" ] && return 0
	log "unpacking $SRC_ORIG"
	rm -rf "$SRC" "$WORK/.reflect2-swapped" "$WORK/.built"
	mkdir -p "$SRC"
	tar -xzf "$WORK/download/$SRC_ORIG" -C "$SRC" --strip-components=1 --no-same-owner
	if [ ! -f "$SRC/hack/lib/golang.sh" ] || [ ! -d "$SRC/$REFLECT2_VENDOR" ]; then
		die "$SRC_ORIG is not the expected source tree"
	fi
	# The build runs in GOPATH mode (as Debian's own packaging does): k8s.io/kubernetes must resolve.
	mkdir -p "$SRC/.go/src/k8s.io"
	ln -sfn ../../.. "$SRC/.go/src/k8s.io/kubernetes"
	touch "$WORK/.extracted"
}

swap_reflect2() {
	[ -f "$WORK/.reflect2-swapped" ] && return 0
	local deb version root=$WORK/reflect2 from
	apt_download "$REFLECT2_PACKAGE" "$WORK/debs"
	deb=$DEB
	version=$(dpkg-deb -f "$deb" Version)
	dpkg --compare-versions "$version" ge "$REFLECT2_MIN_VERSION" ||
		die "$REFLECT2_PACKAGE $version is older than $REFLECT2_MIN_VERSION"
	rm -rf "$root"
	dpkg-deb -x "$deb" "$root"
	from=$root/usr/share/gocode/src/github.com/modern-go/reflect2
	[ -f "$from/reflect2.go" ] || die "${deb##*/} does not contain the reflect2 sources"
	log "replacing the vendored modern-go/reflect2 v1.0.1 with Debian's $version"
	find "$SRC/$REFLECT2_VENDOR" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
	find "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
		-exec cp -t "$SRC/$REFLECT2_VENDOR" {} +
	rm -f "$WORK/.built"
	touch "$WORK/.reflect2-swapped"
}

build_done() { [ -f "$WORK/.built" ] && is_kube_apiserver "$SRC/_output/bin/kube-apiserver"; }

build_apiserver() {
	local out=$SRC/_output/bin/kube-apiserver logf=$WORK/build.log t0=$SECONDS
	[ -f "$WORK/.reflect2-swapped" ] || die "internal: reflect2 must be replaced before building"
	log "building kube-apiserver $KUBE_VERSION with Go 1.19 (about 8-9 minutes on 2 cores; log: $logf)"
	# (errexit does not apply inside a negated pipeline, hence the explicit exits)
	if ! (
		cd "$SRC" || exit 1
		# A caller's Go, make or Kubernetes build settings must not leak into this build.
		unset GOROOT GOBIN GOFLAGS GOOS GOARCH GOARM GO111MODULE GOEXPERIMENT GOTOOLCHAIN GOLDFLAGS \
			GOGCFLAGS GOASMFLAGS DBG KUBE_BUILD_PLATFORMS KUBE_VERBOSE MAKEFLAGS MFLAGS MAKELEVEL
		export PATH="$GO_ROOT/bin:$PATH" GOPATH="$SRC/.go" GOCACHE="$WORK/go-cache" GOENV=off GOPROXY=off \
			CGO_ENABLED=0 KUBE_GIT_VERSION="$KUBE_VERSION" KUBE_GIT_TREE_STATE=clean
		exec make WHAT=cmd/kube-apiserver
	) 2>&1 | tee "$logf" >&2; then
		die "building kube-apiserver failed (full log: $logf)"
	fi
	is_kube_apiserver "$out" ||
		die "the build left no working $out ('$("$out" --version 2>&1 | head -n 1)'; log: $logf)"
	touch "$WORK/.built"
	log "kube-apiserver built in $((SECONDS - t0)) s"
}

provide_kube_apiserver() {
	is_kube_apiserver "$BIN/kube-apiserver" && return 0
	if build_done; then
		log "reusing the finished build in $SRC/_output"
	else
		ensure_build_tools
		if [ ! -f "$WORK/.extracted" ]; then
			check_disk
			fetch_source
			extract_source
		fi
		swap_reflect2 # before the first build, so that one build is enough
		build_apiserver
	fi
	install_bin "$SRC/_output/bin/kube-apiserver" kube-apiserver
}

# ---- main --------------------------------------------------------------------------------------
provide_etcd
provide_kube_apiserver
finished || die "kube-apiserver or etcd in $BIN does not work after installing it"
log "removing intermediate files ($(du -sh "$WORK" 2>/dev/null | cut -f 1) in $WORK)"
rm -rf "$WORK"
rm -f "$BIN"/.*.partial
log "done in $((SECONDS - started)) s"
succeed
