//go:build benchlinked

package main

// Built with -tags benchlinked (bin/hermes-s6-bench-floor-linked), the
// floor links every package hermes-s6 links: their initialisation runs
// before main, as in hermes-s6, and nothing of hermes-s6 runs after it.
// Row 1h: what that package set costs any status on top of 1g.
import _ "github.com/nousresearch/hermes-s6/internal/cli"
