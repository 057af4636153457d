// Package hint attaches operator-facing fix suggestions to errors.
//
// An error built with With keeps its chain for errors.Is/As and carries one
// hint line; Of collects every hint along the chain, outermost first, so the
// CLI can print `hermes-s6: hint: …` once per fix without string parsing.
package hint

import "errors"

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// With returns err annotated with a hint. A nil err stays nil.
func With(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

// Of returns the hints attached anywhere in err's chain, outermost first.
func Of(err error) []string {
	var out []string
	for err != nil {
		var h *hinted
		if !errors.As(err, &h) {
			break
		}
		out = append(out, h.hint)
		err = h.err
	}
	return out
}
