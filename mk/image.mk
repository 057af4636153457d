# Container image and the container end-to-end tier (SPEC §8, §9 tier 3).
# Included by ./Makefile, whose `build` makes bin/hermes-s6 and
# bin/hermes-standin; the logic lives in scripts/e2e/run.sh.
# S6_OVERLAY_BASE_URL set: real s6-overlay; unset: the TEST ONLY provider.

.PHONY: base-image e2e-image e2e e2e-bench image

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
