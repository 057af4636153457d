// Package e2e is tier 3 of the hermes-s6 tests (SPEC §9): the container
// image end to end, driven through the docker CLI against a real Docker
// engine. The tests carry the build tag `e2e` and are run by `make e2e`,
// whose harness (scripts/e2e/run.sh) starts dockerd when none answers,
// builds the offline base image and the image's `e2e` stage (the stand-in
// gateway from tests/standin plays `hermes`), runs `go test -tags e2e` here
// and removes every container it created.
//
// The s6 provider follows S6_OVERLAY_BASE_URL: set, the image is built with
// the real s6-overlay v3 fetched from there; unset, with the test-only
// stand-in in tests/s6-test-provider. Both go through the same tests.
//
// Environment read by the tests (the harness sets it):
//
//	HERMES_S6_E2E_IMAGE        image under test (unset: every test skips)
//	HERMES_S6_E2E_PROVIDER     s6 provider the image was built with (printed)
//	HERMES_S6_E2E_RUN_ID       label value put on every container created
//	HERMES_S6_E2E_TIMEOUT      deadline of each wait (Go duration, default 45s)
//	HERMES_S6_E2E_BENCH        set by `make e2e-bench`: run the benchmark
//	HERMES_S6_E2E_FLOOR_IMAGE  the benchmark's floor image
//	HERMES_S6_E2E_BENCH_RUNS   boots per image in the benchmark (default 11)
//
// Every wait polls with a deadline; on failure a test prints the
// container's logs, its process list and s6-svstat of every slot.
package e2e
