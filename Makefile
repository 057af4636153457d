# hermes-s6 — every target is one line; the logic lives in scripts/.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/nousresearch/hermes-s6/internal/cli.Version=$(VERSION)
# urfave_cli_no_docs drops urfave/cli's man/markdown generators (and their
# start-up cost); hermes-s6 does not use them.
TAGS     := urfave_cli_no_docs
export CGO_ENABLED := 0

.PHONY: all build deps test unit lint run bench fuzz base-image e2e-image e2e e2e-bench image clean

all: build

build: ## static binaries in bin/
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/hermes-s6 ./cmd/hermes-s6 && $(GO) build -trimpath -o bin/hermes-standin ./tests/standin

deps: ## install Debian's s6, execline and shellcheck when missing (root), else say what to install
	scripts/deps.sh

test: deps lint ## every test tier that needs no Docker: unit, golden, shellcheck, integration on real s6
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet, staticcheck, shellcheck on shipped shell
	scripts/lint.sh

run: deps build ## the main job on a built-in default: a private s6 tree, the default profile started, status and its log
	scripts/demo.sh

bench: deps build ## side-by-side benchmarks on real s6 (ratios; see README)
	scripts/bench.sh

fuzz: ## every fuzz target for FUZZTIME (default 60s)
	scripts/fuzz.sh

# The image and the container tier (SPEC §8, §9 tier 3); the logic lives
# in scripts/e2e/run.sh. S6_OVERLAY_BASE_URL set: real s6-overlay from
# there; unset: the TEST ONLY Debian-s6 provider (tests/s6-test-provider).
base-image: ## offline Debian base image for the test images (mmdebstrap | docker import)
	sh scripts/e2e/run.sh base-image

e2e-image: build ## the image's e2e stage: stand-in gateway, provider per S6_OVERLAY_BASE_URL
	sh scripts/e2e/run.sh e2e-image

e2e: build ## tier 3: the image end to end on a real Docker engine (starts dockerd if needed)
	sh scripts/e2e/run.sh e2e

e2e-bench: build ## boot-to-banner latency against a static-service floor, and the CMD's RSS
	sh scripts/e2e/run.sh bench

image: build ## the release image; offline: TEST ONLY s6 provider, no gateway program (said loudly)
	sh scripts/e2e/run.sh image

clean:
	rm -rf bin
