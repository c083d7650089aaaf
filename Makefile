# Speedia host. `make demo` runs the update cycle on the built-in test host;
# `make test` runs every test tier this machine supports.

GO       ?= go
# Podman's bindings build without cgo only with these tags; every go command
# here uses them.
TAGS     := remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp
GOFLAGS  := -tags "$(TAGS)"
export CGO_ENABLED := 0
BIN      := bin
CMDS     := speedia-updated speedia-update speedia-containers speedia-image

.PHONY: all build install test unit integration e2e demo bench lint deps clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# Installs the binaries and unit files into DESTDIR (an image root or a
# package staging directory), never onto this machine unless FORCE=1.
install: build
	@[ -n "$(DESTDIR)" ] || { echo "install: set DESTDIR (an image root or staging directory)"; exit 1; }
	@[ "$$(realpath -m '$(DESTDIR)')" != / ] || [ "$(FORCE)" = 1 ] || { echo "install: DESTDIR is /; set FORCE=1 to install onto this machine"; exit 1; }
	$(GO) run $(GOFLAGS) ./units/cmd/install-units -root $(DESTDIR) $(addprefix $(BIN)/,$(CMDS))

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS) ./...
	$(GO) vet $(GOFLAGS) -tags "$(TAGS) integration" ./...
	$(GO) vet $(GOFLAGS) -tags "$(TAGS) e2e" ./...

# All tiers the machine supports; each skipped tier says why.
test: lint unit integration e2e

# Each fuzz target runs briefly on every test run, counted in inputs: a
# time limit makes Go's fuzzer fail now and then with "context deadline
# exceeded" on a loaded machine. Longer runs by hand:
# go test -fuzz FuzzLoad -fuzztime 10m ./updater/config/
FUZZ := pkgver:FuzzDebianAntisymmetric config:FuzzLoad window:FuzzParseDays window:FuzzParseClock \
        window:FuzzParseBlackout window:FuzzNext

unit:
	$(GO) test $(GOFLAGS) -count=1 ./...
	@for f in $(FUZZ); do \
	  echo "fuzz $$f (30000 inputs)"; \
	  out=$$($(GO) test $(GOFLAGS) -run '^$$' -fuzz "^$${f#*:}$$" -fuzztime 30000x ./updater/$${f%%:*}/ 2>&1) || { echo "$$out"; exit 1; }; \
	done

integration:
	@if ! tests/can-integrate; then echo "SKIPPED integration tier: $$(tests/can-integrate --why)"; \
	else $(GO) test $(GOFLAGS) -tags "$(TAGS) integration" -count=1 -p 1 -timeout 30m ./...; fi

# Builds the Debian host image and boots it (and its self-install ISO) in
# QEMU: about 15 minutes on 2 cores under TCG. Then the update cycle on a
# VM (tests/vmhost, about 30 minutes), with -v so each step shows what it
# checked as it goes. E2E=image or E2E=cycle runs one half.
E2E_PKGS := ./tests/vm/ ./image/iso/ ./cmd/speedia-image/
E2E ?= all
e2e: build
	@if ! tests/can-e2e; then echo "SKIPPED e2e tier: $$(tests/can-e2e --why)"; exit 0; fi; \
	if [ "$(E2E)" != cycle ]; then $(GO) test $(GOFLAGS) -tags "$(TAGS) e2e" -count=1 -p 1 -timeout 60m $(E2E_PKGS) || exit 1; fi; \
	if [ "$(E2E)" != image ]; then $(GO) test $(GOFLAGS) -tags "$(TAGS) e2e" -count=1 -v -run TestE2E -timeout 110m ./tests/vmhost/ || exit 1; fi

# Installs what the integration tier and the demo need (Debian; root).
deps:
	tests/install-deps

# VM=1: the whole cycle on a VM booted from the host image (about 30 minutes).
demo:
ifeq ($(VM),1)
	@tests/can-e2e || { echo "The VM demo needs: $$(tests/can-e2e --why). Run 'make deps' as root."; exit 1; }
	@$(MAKE) --no-print-directory build
	$(GO) run $(GOFLAGS) ./tests/demo -vm
else
	@tests/can-integrate || { echo "The demo needs: $$(tests/can-integrate --why). Run 'make deps' as root."; exit 1; }
	$(GO) run $(GOFLAGS) ./tests/demo
endif

bench: build
	@tests/can-integrate || { echo "The benchmarks need: $$(tests/can-integrate --why)"; exit 1; }
	$(GO) run $(GOFLAGS) ./tests/bench $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
