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

# The shell scripts shellcheck checks: every tracked file that starts with a
# #!/bin/sh or bash line, less KIWI's config.sh templates (Go templates) and
# their rendered copies under kiwi/, and testdata (others' scripts kept
# verbatim, such as Debian's initramfs-tools postinst).
SHELL_SCRIPTS = $$(git ls-files -z | grep -zv -e '^kiwi/' -e '/testdata/' | \
  xargs -0 awk 'FNR == 1 { if ($$0 ~ /^\#!(\/usr)?\/bin\/(env )?(ba|da)?sh( |$$)/) print FILENAME; nextfile }')

# gofmt, go vet and staticcheck (pinned in tests/staticcheck) for each tag
# set, shellcheck for the shell scripts. Installs the linters it lacks.
lint:
	@GO="$(GO)" tests/install-deps --lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS) ./...
	$(GO) vet $(GOFLAGS) -tags "$(TAGS) integration" ./...
	$(GO) vet $(GOFLAGS) -tags "$(TAGS) e2e" ./...
	GO="$(GO)" tests/staticcheck $(GOFLAGS) ./...
	GO="$(GO)" tests/staticcheck $(GOFLAGS) -tags "$(TAGS) integration" ./...
	GO="$(GO)" tests/staticcheck $(GOFLAGS) -tags "$(TAGS) e2e" ./...
	shellcheck $(SHELL_SCRIPTS)

# All tiers the machine supports; each skipped tier says why. Installs what
# they need first (tests/install-deps returns at once when all is there).
test: deps lint unit integration e2e

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

# Installs what the linters, the test tiers and the demo need (Debian; root).
# `make test` and `make demo` do it themselves; this is for doing it apart.
deps:
	@GO="$(GO)" tests/install-deps

# VM=1: the whole cycle on a VM booted from the host image (about 30 minutes).
demo: deps
ifeq ($(VM),1)
	@tests/can-e2e || { echo "The VM demo needs: $$(tests/can-e2e --why)"; exit 1; }
	@$(MAKE) --no-print-directory build
	$(GO) run $(GOFLAGS) ./tests/demo -vm
else
	@tests/can-integrate || { echo "The demo needs: $$(tests/can-integrate --why)"; exit 1; }
	$(GO) run $(GOFLAGS) ./tests/demo
endif

bench: build
	@tests/can-integrate || { echo "The benchmarks need: $$(tests/can-integrate --why)"; exit 1; }
	$(GO) run $(GOFLAGS) ./tests/bench $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
