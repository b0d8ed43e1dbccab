# ThePeerDrop build, test and setup.
#
#   make run    install what is missing, build and start the desktop app
#   make test   install what is missing, then vet, format check and all tests
#   make help   list every target
#
# `deps` installs the Debian packages that the Fyne desktop app needs to
# compile (GL and X11 headers, a C compiler) and Xvfb for headless runs. It
# calls apt-get only when one of them is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help
# Targets list their helpers as prerequisites in the order they must run.
.NOTPARALLEL:

GO ?= go
BIN := bin

# Debian packages the desktop app needs to build (and Xvfb to run headless);
# iproute2 (the ip command) and iptables build the network namespaces and
# NAT routers of multi-host tests; chromium runs the web client's tests
# (headless, driven by chromedp) and firefox-esr some of them (headless,
# driven over its own WebDriver BiDi, with its default settings); dbus, dunst and xdotool give the desktop
# app's end-to-end tests a session bus, a notification server with actions
# and a way to close or raise windows under Xvfb; x11-utils' xprop reads a
# window's minimum size; redis-server is started privately by tests
# (internal/redistest, on a free loopback port; never the system service);
# so is nginx, in front of serve instances (e2e/deploy_test.go runs
# deploy/nginx/peerdrop.conf). sys-deps keeps the services of the packages
# it installs from starting (a policy-rc.d while apt-get runs).
SYS_PKGS := libgl1-mesa-dev xorg-dev xvfb pkg-config gcc iproute2 iptables chromium firefox-esr dbus dbus-x11 dunst xdotool x11-utils redis-server nginx
# `make run` needs only what builds the app (a target-specific value, which
# its prerequisites see too).
RUN_PKGS := libgl1-mesa-dev xorg-dev pkg-config gcc

# Build flags of the binaries: paths trimmed, and the commit stamped in
# (peerdrop --version) even where GOFLAGS says -buildvcs=false.
BUILDFLAGS := -trimpath $(shell git status --porcelain >/dev/null 2>&1 && echo -buildvcs=auto || echo -buildvcs=false)

# The LocalSend peer of the interoperability tests: the npm package
# localsend (an independent implementation of LocalSend protocol v2, a Node
# CLI) pinned in its package-lock.json. node-deps installs Node.js and npm
# through sys-deps only when the node or npm command is missing (a NodeSource
# nodejs brings its own npm, which Debian's npm package would conflict with).
LOCALSEND_PEER := e2e/testdata/localsend

# Packages tested with the race detector. A directory that does not exist
# (yet) or holds no Go file is skipped.
CORE_DIRS ?= identity signaling peer transfer trust discovery engine pairing relay rendezvous remote web localsend cli internal
CORE_PKGS ?= $(shell for d in $(CORE_DIRS); do [ -d $$d ] && find $$d -name '*.go' | grep -q . && echo ./$$d/...; done)

# Multi-process end-to-end tests: they build the binaries themselves, so no
# -race here (the race detector makes every process several times slower).
E2E_DIRS ?= cmd e2e
E2E_PKGS ?= $(shell for d in $(E2E_DIRS); do [ -d $$d ] && find $$d -name '*_test.go' | grep -q . && echo ./$$d/...; done)

# Fuzz targets as package:FuzzName, each run for FUZZTIME.
FUZZTIME ?= 20s
FUZZ_TARGETS ?= ./signaling:FuzzReadFrame ./signaling:FuzzDecodeHello ./signaling:FuzzDecodeCandidate ./signaling:FuzzDecodeSDP ./transfer:FuzzDecodeMessage ./transfer:FuzzValidateManifest \
	./discovery:FuzzParseResponse ./discovery:FuzzDecodeTXT ./discovery:FuzzAnswerQuery ./pairing:FuzzDecode \
	./rendezvous:FuzzDecodeEnvelope ./rendezvous:FuzzClientIP ./remote:FuzzDecodeChunk ./internal/visible:FuzzEscape \
	./web:FuzzDecodeFrameMessage ./web:FuzzDecodeControl \
	./localsend:FuzzDecodeInfo ./localsend:FuzzDecodePrepare ./localsend:FuzzDecodePrepareResponse

# The fyne command-line tool, run with `go run` (nothing to install).
FYNE_TOOL ?= fyne.io/tools/cmd/fyne@v1.7.4

.PHONY: help deps sys-deps node-deps npm-deps go-deps build build-cli build-gui run test vet vet-cross fmt-check \
	test-core test-app test-e2e fuzz bench lint package release test-release screenshot clean

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /  \1\t/' | expand -t 14

deps: sys-deps go-deps ## Install missing system packages and download Go modules.

sys-deps: ## Install the missing Debian packages in SYS_PKGS (apt-get only when one is missing; no service they bring is started: the tests run private redis-server and nginx).
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "deps: no dpkg here (not Debian?); install by hand: $(SYS_PKGS)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else \
		echo "deps: missing packages:$$missing" >&2; \
		echo "deps: run as root, or install them by hand: apt-get install$$missing" >&2; \
		exit 1; \
	fi; \
	echo "deps: installing missing packages:$$missing"; \
	policy=""; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\n# make deps: no service starts while packages install\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null && \
		$$sudo chmod 755 /usr/sbin/policy-rc.d && policy=1; \
	fi; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	rc=$$?; \
	if [ -n "$$policy" ]; then $$sudo rm -f /usr/sbin/policy-rc.d; fi; \
	exit $$rc

node-deps: ## Install Node.js and npm (Debian packages nodejs, npm) when the node or npm command is missing.
	@missing=""; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	$(MAKE) --no-print-directory sys-deps SYS_PKGS="$$missing"

npm-deps: $(LOCALSEND_PEER)/node_modules ## Install the LocalSend peer of the e2e tests (npm ci in e2e/testdata/localsend, when node_modules is missing or older than the lock file).

# npm ci starts by deleting node_modules: one left by a failed run is removed
# so that the next make runs it again.
$(LOCALSEND_PEER)/node_modules: $(LOCALSEND_PEER)/package.json $(LOCALSEND_PEER)/package-lock.json | node-deps
	cd $(LOCALSEND_PEER) && npm ci --no-audit --no-fund || { rm -rf node_modules; exit 1; }
	@touch $@

go-deps: ## Download the Go modules in go.mod.
	$(GO) mod download

build: build-cli build-gui ## Build bin/peerdrop (CLI) and bin/thepeerdrop (desktop app).

build-cli: ## Build the headless CLI bin/peerdrop (pure Go, no cgo).
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)/peerdrop ./cmd/peerdrop

build-gui: deps ## Build the Fyne desktop app bin/thepeerdrop (needs cgo and the GL/X headers).
	CGO_ENABLED=1 $(GO) build $(BUILDFLAGS) -o $(BIN)/thepeerdrop .

run: SYS_PKGS := $(RUN_PKGS)
run: deps build-gui ## Build and start the desktop app.
	./$(BIN)/thepeerdrop

test: deps vet vet-cross fmt-check test-core test-app test-e2e ## Vet, format check, core and app tests with -race, end-to-end tests.

vet: ## go vet every package (the desktop app needs the headers from deps).
	$(GO) vet ./...

vet-cross: ## go vet every package but the desktop app for GOOS=windows and GOOS=darwin, so a Unix-only call in the core shows at once (the e2e tests are built for Linux alone).
	@set -e; mod=$$($(GO) list -m); \
	pkgs=$$($(GO) list ./... | grep -v -x -e "$$mod" -e "$$mod/app"); \
	for os in windows darwin; do echo "go vet GOOS=$$os (all but the desktop app)"; GOOS=$$os $(GO) vet $$pkgs; done

fmt-check: ## Fail if gofmt would change any file.
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$files"; exit 1; fi

test-core: ## Unit tests of the core packages, with the race detector; the rendezvous suite again on a private Redis.
	@if [ -z "$(strip $(CORE_PKGS))" ]; then echo "test-core: no core packages yet, skipped"; exit 0; fi; \
	set -x; $(GO) test -race -count=1 -timeout 15m $(CORE_PKGS) && \
	PEERDROP_TEST_STORE=redis $(GO) test -race -count=1 -timeout 10m ./rendezvous/

test-app: ## Widget tests of the desktop app, with -race (Fyne's test driver: no display needed).
	$(GO) test -race -count=1 ./app

test-e2e: npm-deps ## Multi-process end-to-end tests (no -race); multi-host ones need root.
	@if [ -z "$(strip $(E2E_PKGS))" ]; then echo "test-e2e: no end-to-end tests yet, skipped"; exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "test-e2e: not root: the multi-host tests (network namespaces, TestLAN*) are SKIPPED; run make test as root to include them"; \
	fi; \
	set -x; $(GO) test -count=1 -timeout 20m $(E2E_PKGS)

fuzz: ## Run each fuzz target in FUZZ_TARGETS for FUZZTIME.
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; name="$${t##*:}"; \
		if ! grep -qs "^func $$name(" $$pkg/*_test.go; then echo "fuzz: $$name not found in $$pkg, skipped"; continue; fi; \
		echo "==> $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench: ## Handshake time (./peer), the transfer benchmarks in ./bench once each (the 1 Gbit namespace link table against TCP, TLS, bare pion and croc needs root; PEERDROP_BENCH_BASELINE=old-binary adds a before row), 2000 rendezvous clients (relay latency, memory per idle connection), 20,000 over two instances on Redis beside one in memory (signal delivery p50/p99, memory per connection), the web page's throughput.
	@if ! ls bench/*_test.go >/dev/null 2>&1; then echo "bench: no benchmarks yet, skipped"; exit 0; fi; \
	set -x; $(GO) test -run '^$$' -bench Connect -benchtime 20x ./peer/ && \
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 45m ./bench/ && \
	RENDEZVOUS_BENCH_CLIENTS=2000 $(GO) test -run '^$$' -bench 'Relay|Idle' -benchtime 1x -timeout 10m ./rendezvous/ && \
	RENDEZVOUS_BENCH_CLIENTS=20000 $(GO) test -run '^$$' -bench ScaleOut -benchtime 1x -timeout 20m ./rendezvous/ && \
	PEERDROP_BENCH_WEB=1 $(GO) test -v -run '^TestWebThroughput$$' -count=1 -timeout 20m ./e2e/

lint: vet fmt-check ## go vet and gofmt check.

# The tool packages bin/thepeerdrop: left to build by itself it would name the
# binary after the module (peerdrop), the CLI's name. It also bumps Build in
# FyneApp.toml on every run; the copy keeps the tree clean (bump it by hand
# for a release).
package: build-gui ## Package the desktop app for Linux (ThePeerDrop.tar.xz) with the fyne tool.
	@cp FyneApp.toml FyneApp.toml.orig; \
	$(GO) run $(FYNE_TOOL) package -os linux -icon assets/icon.png -executable $(BIN)/thepeerdrop; rc=$$?; \
	mv -f FyneApp.toml.orig FyneApp.toml; exit $$rc

# What make release needs beyond the build: mingw-w64 for the Windows app,
# Debian's packaging and checking tools.
RELEASE_PKGS := $(RUN_PKGS) git gcc-mingw-w64-x86-64 dpkg-dev desktop-file-utils appstream zip unzip xz-utils file binutils

release: ## Write dist/: static CLIs (linux, windows, darwin, freebsd; amd64, arm64), the Linux app (.tar.xz, .deb), the Windows app (.zip, cross-built), SHA256SUMS. Slow (the Windows app: minutes).
	@$(MAKE) --no-print-directory sys-deps SYS_PKGS="$(RELEASE_PKGS)"
	GO=$(GO) FYNE_TOOL=$(FYNE_TOOL) sh deploy/release/release.sh

test-release: ## make release on a clean checkout, then check what it wrote: checksums, the .deb (info, desktop and AppStream files, dpkg -i, --version, dpkg -r), the Windows .exe (PE32+ GUI, its version). Installs the .deb on this machine. Needs root.
	@$(MAKE) --no-print-directory sys-deps SYS_PKGS="$(RELEASE_PKGS)"
	GO=$(GO) FYNE_TOOL=$(FYNE_TOOL) sh deploy/release/test-release.sh

screenshot: ## Render docs/screenshot-*.png: the desktop app with sample data, on Fyne's test driver.
	$(GO) test -count=1 -run '^TestScreenshots$$' ./app -args -screenshots
	@ls -l docs/screenshot-*.png

clean: ## Remove build outputs.
	rm -rf $(BIN) fyne-cross *.tar.xz dist
