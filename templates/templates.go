// Package templates holds the embedded text/template sources of a slot's
// scripts, parsed once, on first use, with missingkey=error.
//
// text/template escapes nothing, so every value that comes from input goes
// through the one quoting function, "sh", which renders it as a single POSIX
// shell word. The templates never build shell from concatenated strings.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

// set parses the templates once, on first use: commands that render
// nothing (status, list, logs) do not pay for it at start-up. The sources
// are embedded, so a parse error is a build defect and panics.
var set = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("slot").
		Option("missingkey=error").
		Funcs(template.FuncMap{"sh": Quote}).
		ParseFS(files, "*.tmpl"))
})

// Execute renders the named template (e.g. "run.tmpl") with data.
func Execute(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := set().ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// bare is compiled on first use, like the templates: commands that render
// nothing do not pay for it at start-up.
var bare = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`) })

// Quote returns s as one POSIX sh word that expands to exactly s. Words made
// only of characters sh gives no meaning to stay bare for readability;
// everything else is single-quoted, and each single quote inside is
// written as these four characters (close, escaped quote, reopen):
//
//	'\''
func Quote(s string) string {
	if bare().MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
