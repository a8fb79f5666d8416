# DiffKeeper — build, test, install, benchmark.
# `make build` compiles everything and publishes the binaries into artifacts/bin;
# `make test` is what CI (.ci/run) and the README call.

DOTNET  ?= dotnet
CONFIG  ?= Release
PREFIX  ?= /usr/local
ART     := $(CURDIR)/artifacts
BIN     := $(ART)/bin
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
# Every dotnet command leaves two empty 6-character directories in $TMPDIR (the SDK's, dotnet/sdk#35353): the builds
# get one under artifacts/ (removed by `make clean`) instead of /tmp. Only dotnet: the shims and tests keep theirs.
DOTNET_TMP := $(ART)/tmp
DOTNET_RUN = mkdir -p $(DOTNET_TMP) && TMPDIR=$(DOTNET_TMP) $(DOTNET)

SHIM := containerd-shim-diffkeeper-v1
# The package version (deb, rpm); the binaries print the same with --version.
VERSION ?= 0.1.0

.PHONY: all build publish bpf test test-unit test-integration install uninstall demo bench bench-shim bench-store bench-capture bench-overhead bench-overhead-record bench-oci deb rpm clean

all: build

build:
	$(DOTNET_RUN) build DiffKeeper.sln -c $(CONFIG) --nologo -v q
	$(MAKE) --no-print-directory publish

# Both binaries are Native AOT: containerd starts one shim per container (start-up and RSS matter), and the CLI
# answers `show` in a few ms. The CLI loads librocksdb.so from its own directory; artifacts/bin/diffkeeper links to it.
# diffkeeperd (AOT too) is copied into artifacts/bin with librocksdb.so: it loads that and diffkeeper.bpf.o from its own directory.
publish: bpf
	$(DOTNET_RUN) publish src/DiffKeeper.Shim.Binary -c $(CONFIG) --nologo -v q -o $(ART)/shim
	$(DOTNET_RUN) publish src/DiffKeeper.Cli -c $(CONFIG) --nologo -v q -o $(ART)/cli
	$(DOTNET_RUN) publish src/DiffKeeper.Recorder -c $(CONFIG) --nologo -v q -o $(ART)/daemon
	mkdir -p $(BIN)
	install -m 0755 $(ART)/shim/$(SHIM) $(BIN)/$(SHIM)
	ln -sf ../cli/diffkeeper $(BIN)/diffkeeper
	install -m 0755 $(ART)/daemon/diffkeeperd $(ART)/daemon/librocksdb.so $(BIN)/

# The eBPF object (CO-RE; vmlinux.h generated from this machine's /sys/kernel/btf/vmlinux) lands beside the
# binaries: diffkeeperd loads artifacts/bin/diffkeeper.bpf.o (or $(PREFIX)/lib/diffkeeper/diffkeeper.bpf.o).
bpf:
	$(MAKE) --no-print-directory -C bpf OUT=$(ART)/bpf
	mkdir -p $(BIN)
	install -m 0644 $(ART)/bpf/diffkeeper.bpf.o $(BIN)/diffkeeper.bpf.o

# Unit and integration tests. Integration tests need root, containerd, runc and busybox-static;
# with DIFFKEEPER_REQUIRE_INTEGRATION=1 (set by .ci/run) they fail instead of skipping when those are missing.
test: build
	DIFFKEEPER_BIN_DIR=$(BIN) CONFIG=$(CONFIG) tests/run-tests.sh

test-unit: build
	DIFFKEEPER_BIN_DIR=$(BIN) CONFIG=$(CONFIG) tests/run-tests.sh --unit

test-integration: build
	DIFFKEEPER_BIN_DIR=$(BIN) CONFIG=$(CONFIG) tests/run-tests.sh --integration

install: publish
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/diffkeeper
	install -m 0755 $(ART)/shim/$(SHIM) $(DESTDIR)$(PREFIX)/bin/$(SHIM)
	install -m 0755 $(ART)/cli/diffkeeper $(ART)/cli/librocksdb.so $(DESTDIR)$(PREFIX)/lib/diffkeeper/
	install -m 0755 $(ART)/daemon/diffkeeperd $(DESTDIR)$(PREFIX)/lib/diffkeeper/
	install -m 0644 $(BIN)/diffkeeper.bpf.o $(DESTDIR)$(PREFIX)/lib/diffkeeper/
	ln -sf ../lib/diffkeeper/diffkeeper $(DESTDIR)$(PREFIX)/bin/diffkeeper
	ln -sf ../lib/diffkeeper/diffkeeperd $(DESTDIR)$(PREFIX)/bin/diffkeeperd

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/$(SHIM) $(DESTDIR)$(PREFIX)/bin/diffkeeper $(DESTDIR)$(PREFIX)/bin/diffkeeperd
	rm -rf $(DESTDIR)$(PREFIX)/lib/diffkeeper

demo: build
	DIFFKEEPER_BIN_DIR=$(BIN) scripts/demo.sh

bench: bench-shim bench-store bench-capture bench-overhead bench-oci

bench-shim: build
	DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-shim.sh

bench-store: build
	DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-store.sh

# What recording costs a container (in-container time, diffkeeper vs runc.v2), the daemon's CPU and RSS, then
# bench-shim with the daemon running.
bench-overhead: build
	DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-overhead.sh

# The same workloads as plain commands: `diffkeeper record -- dkwork …` against dkwork alone, alternating. On a fresh
# journaled ext4 (loop-mounted) by default, as CI runners and containerd hosts have: this machine's root ext4 has no
# journal, and there (c) is half ext4's scan past recently deleted inodes (docs/record.md, session 9). BENCH_FS= (empty)
# runs on the machine's own file system.
bench-overhead-record: build
	BENCH_MODE=record BENCH_FS=$${BENCH_FS-journal} DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-overhead.sh

# export --oci, replay and a second push against their peers (issue 11).
bench-oci: build
	DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-oci.sh

# The eBPF change capture's cost on the write path: baseline vs attached-untracked vs tracked (docs/bpf.md).
bench-capture: bpf
	DIFFKEEPER_BIN_DIR=$(BIN) tests/bench/bench-capture.sh

# Node packages: dist/diffkeeper_$(VERSION)_amd64.deb and dist/diffkeeper-$(VERSION).x86_64.rpm, the same file tree
# (packaging/stage.sh). Need dpkg-dev / rpm (Debian's rpm package provides rpmbuild). See packaging/README.md.
deb: publish
	VERSION=$(VERSION) ART=$(ART) packaging/build-deb.sh

rpm: publish
	VERSION=$(VERSION) ART=$(ART) packaging/build-rpm.sh

clean:
	rm -rf $(ART) dist
	rm -rf report/dist report/node_modules
	find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
