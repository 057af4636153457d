// Package hint attaches operator-facing fix suggestions to errors.
//
// An error built with With keeps its chain for errors.Is/As and carries one
// hint line; Of collects every hint in the error's tree, outermost first and
// each branch of a joined error in order, so the CLI can print
// `hermes-s6: hint: …` once per fix without string parsing.
package hint

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

// Of returns the hints attached anywhere in err's tree: depth first,
// outermost first, the branches of an errors.Join (or any Unwrap() []error)
// in order. A hint attached twice is listed once.
func Of(err error) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(error)
	walk = func(err error) {
		for err != nil {
			switch e := err.(type) {
			case *hinted:
				if !seen[e.hint] {
					seen[e.hint] = true
					out = append(out, e.hint)
				}
				err = e.err
			case interface{ Unwrap() []error }:
				for _, branch := range e.Unwrap() {
					walk(branch)
				}
				return
			case interface{ Unwrap() error }:
				err = e.Unwrap()
			default:
				return
			}
		}
	}
	walk(err)
	return out
}
