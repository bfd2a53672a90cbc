# Node 24 comes from the npm registry when the machine's node is older (Debian ships 20).
NODE_VERSION ?= 24.21.0
NODE_MIN_MAJOR := 24
NODE_PLATFORM := $(shell uname -s | tr A-Z a-z)-$(shell uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
LOCAL_NODE_BIN := $(CURDIR)/.cache/node/node_modules/node-$(NODE_PLATFORM)/bin
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ $(SYSTEM_NODE_MAJOR) -ge $(NODE_MIN_MAJOR) ] && echo ok),ok)
NODE_BIN :=
else
NODE_BIN := $(LOCAL_NODE_BIN)
export PATH := $(LOCAL_NODE_BIN):$(PATH)
endif

.PHONY: all node deps build install uninstall typecheck provision test test-unit test-integration mutation bench demo clean
all: build

node:
ifneq ($(NODE_BIN),)
	@command -v npm >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing Debian's npm to fetch Node $(NODE_VERSION): $$sudo apt-get install npm"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; }
	@test -x $(LOCAL_NODE_BIN)/node || npm install --prefix .cache/node --no-save --no-audit --no-fund --no-package-lock node-$(NODE_PLATFORM)@$(NODE_VERSION)
endif
	@node --version

node_modules/.package-lock.json: package.json package-lock.json | node
	npm ci --no-audit --no-fund
	@touch $@

deps: node node_modules/.package-lock.json

build: deps
	npx tsc -p tsconfig.build.json
	@echo "built: run bin/bundle-promoter help (it starts dist/cli.js with the Node $$(node -p process.versions.node) used here);"
	@echo "       make install [PREFIX=/usr/local] puts bundle-promoter on PATH"

# A symlink to bin/bundle-promoter, which runs this checkout's dist/cli.js with the Node fetched by 'make node'
# (when the machine's is older): the checkout must stay where it is.
PREFIX ?= /usr/local
install: build
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	ln -sf $(CURDIR)/bin/bundle-promoter $(DESTDIR)$(PREFIX)/bin/bundle-promoter

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/bundle-promoter

typecheck: deps
	npx tsc -p tsconfig.json --noEmit

# What the tests need on the machine (Debian packages, a kube-apiserver), installed when missing.
provision:
	bash test/provision.sh

# The whole suite: type check, build (tests run the built CLI), unit, integration and end-to-end tests
# against real programs (a registry, Redis, Prometheus, a kube-apiserver), provisioned first.
test: provision typecheck build
	npx vitest run

test-unit: deps
	npx vitest run test/unit

test-integration: build
	npx vitest run test/integration

# StrykerJS over the critical modules (stryker.config.json, docs/testing.md#mutation). Incremental: a rerun tests
# only the mutants whose code or tests changed (test/mutation/stryker-incremental.json, committed; commit it after
# a run). MUTATE=src/oci/digest.ts narrows it to some files.
mutation: deps
	npx stryker run $(if $(MUTATE),--mutate $(MUTATE))

bench: build
	npx tsc -p tsconfig.bench.json && node .bench/build/bench/copy-bench.js

# The promotion workflow end to end on this machine (demo/README.md): a throwaway registry on a free loopback
# port, the seed scenario, 'bundle-promoter run' over demo/promotions/, narrated step by step. It stops
# everything it started (also on failure or Ctrl-C) and keeps its files in a temp directory it prints.
# Installs what is missing: Node 24 and the npm packages (deps, via build), Debian's docker-registry (apt).
demo: build
	@command -v docker-registry >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "make demo needs docker-registry (Distribution 2.x) on PATH: install it, or use Debian/Ubuntu" >&2; exit 1; }; \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing Debian's docker-registry: $$sudo apt-get install docker-registry"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry; }
	npx tsc -p tsconfig.demo.json
	node .demo/build/demo/demo.js

clean:
	rm -rf dist
