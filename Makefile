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

.PHONY: all node deps build typecheck test test-unit test-integration bench clean
all: build

node:
ifneq ($(NODE_BIN),)
	@test -x $(LOCAL_NODE_BIN)/node || npm install --prefix .cache/node --no-save --no-audit --no-fund --no-package-lock node-$(NODE_PLATFORM)@$(NODE_VERSION)
endif
	@node --version

node_modules/.package-lock.json: package.json package-lock.json | node
	npm ci --no-audit --no-fund
	@touch $@

deps: node node_modules/.package-lock.json

build: deps
	npx tsc -p tsconfig.build.json

typecheck: deps
	npx tsc -p tsconfig.json --noEmit

# The whole suite: type check, build (tests run the built CLI), unit and integration tests against a
# real registry (docker-registry, skopeo, htpasswd and openssl must be installed: .ci/run does that).
test: typecheck build
	npx vitest run

test-unit: deps
	npx vitest run test/unit

test-integration: build
	npx vitest run test/integration

bench: build
	npx tsc -p tsconfig.bench.json && node .bench/build/bench/copy-bench.js

clean:
	rm -rf dist
