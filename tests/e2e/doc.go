// Package e2e is tier 3 of the hermes-s6 tests (docs/ARCHITECTURE.md: Tests): the container
// image end to end, driven through the docker CLI against a real Docker
// engine. The tests carry the build tag `e2e` and are run by `make e2e`,
// whose harness (scripts/e2e/run.sh) starts dockerd when none answers,
// builds the offline base image and the image's `e2e` stage (the stand-in
// gateway from tests/standin plays `hermes`), runs `go test -tags e2e` here
// and removes every container it created.
//
// The image runs on the real s6-overlay v3 (3.2.3.2 by default; .ci/run
// also runs the tier on 3.2.0.2), built from the release tarballs in
// ../shared/s6-overlay/ or at S6_OVERLAY_BASE_URL. Its scandir holds
// s6-overlay's own services too: the tests look only at hermes-s6's slots.
//
// Environment read by the tests (the harness sets it):
//
//	HERMES_S6_E2E_IMAGE        image under test (unset: every test skips)
//	HERMES_S6_E2E_PROVIDER     s6-overlay version the image was built with (printed)
//	HERMES_S6_E2E_RUN_ID       label value put on every container created
//	HERMES_S6_E2E_TIMEOUT      deadline of each wait (Go duration, default 45s)
//	HERMES_S6_E2E_BENCH        set by `make e2e-bench`: run the benchmark
//	HERMES_S6_E2E_FLOOR_IMAGE  the benchmark's floor image
//	HERMES_S6_E2E_BENCH_RUNS   boots per image in the benchmark (default 11)
//
// Every wait polls with a deadline; on failure a test prints the
// container's logs, its process list and s6-svstat of every slot.
package e2e
