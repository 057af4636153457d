# hermes-s6 — every target is one line; the logic lives in scripts/.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/nousresearch/hermes-s6/internal/cli.Version=$(VERSION)
# urfave_cli_no_docs drops urfave/cli's man/markdown generators (and their
# start-up cost); hermes-s6 does not use them.
TAGS     := urfave_cli_no_docs
export CGO_ENABLED := 0

.PHONY: all build deps test unit lint deploy-test run bench fuzz base-image e2e-image e2e e2e-bench image clean

all: build

build: ## static binaries in bin/
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/hermes-s6 ./cmd/hermes-s6 && $(GO) build -trimpath -o bin/hermes-standin ./tests/standin

deps: ## install Debian's s6, execline and shellcheck when missing (root), else say what to install
	scripts/deps.sh

test: deps lint deploy-test ## every test tier that needs no Docker: unit, golden, shellcheck, integration on real s6, the deployments' rules
	$(GO) test -count=1 ./...

unit: ## the tests that need no s6 tree: unit, golden, shellcheck of rendered scripts, fuzz seeds
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests/integration)

lint: ## gofmt, go vet, staticcheck, shellcheck on shipped shell
	scripts/lint.sh

# deploy/ is a module of its own (k8s.io/api stays out of the binary's);
# its Docker tests run in make e2e, so HERMES_S6_E2E_IMAGE is cleared here.
deploy-test: ## the deployments in deploy/ read strictly and checked by rule (docs/deploy.md)
	cd deploy && $(GO) mod tidy -diff && $(GO) vet ./... && HERMES_S6_E2E_IMAGE= $(GO) test -count=1 ./...

run: deps build ## the main job on a built-in default: a private s6 tree, the default profile started, status and its log
	scripts/demo.sh

bench: deps build ## side-by-side benchmarks on real s6 (ratios; see README)
	scripts/bench.sh

fuzz: ## every fuzz target for FUZZTIME (default 60s)
	scripts/fuzz.sh

# The image and the container tier, always on the real s6-overlay
# ($(S6_OVERLAY_VERSION), default 3.2.3.2); the logic lives in
# scripts/e2e/run.sh. Its tarballs come from S6_OVERLAY_BASE_URL, else
# ../shared/s6-overlay/VERSION/ served on loopback, else the GitHub release.
base-image: ## offline Debian base image for the test images (mmdebstrap | docker import)
	sh scripts/e2e/run.sh base-image

e2e-image: build ## the image's e2e stage: the stand-in gateway as hermes
	sh scripts/e2e/run.sh e2e-image

e2e: build ## tier 3: the image end to end on a real Docker engine (starts dockerd if needed)
	sh scripts/e2e/run.sh e2e

e2e-bench: build ## boot-to-banner and docker stop against their floors, and the CMD's RSS
	sh scripts/e2e/run.sh bench

image: build ## the release image; without PyPI: no gateway program (said loudly)
	sh scripts/e2e/run.sh image

clean:
	rm -rf bin
