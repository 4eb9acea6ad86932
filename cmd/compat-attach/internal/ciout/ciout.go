// Package ciout writes a command's outputs and job summary for a CI system, in GitHub Actions'
// formats (https://docs.github.com/actions/reference/workflow-commands-for-github-actions):
// outputs as name=value lines appended to a file ($GITHUB_OUTPUT; a value with newlines in the
// heredoc form name<<DELIMITER), a summary as Markdown appended to another ($GITHUB_STEP_SUMMARY).
// Other CI systems get the same files with the flags.
package ciout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Files names the output and summary files; "" writes nothing.
type Files struct {
	Output  string
	Summary string
}

// Bind adds --github-output and --github-summary to fs. When the command runs in GitHub Actions
// (GITHUB_ACTIONS=true) they default to $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY.
func (f *Files) Bind(fs *pflag.FlagSet) {
	var out, sum string
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		out, sum = os.Getenv("GITHUB_OUTPUT"), os.Getenv("GITHUB_STEP_SUMMARY")
	}
	fs.StringVar(&f.Output, "github-output", out, "append the command's outputs (name=value, GitHub Actions' format) to this file (default $GITHUB_OUTPUT in GitHub Actions)")
	fs.StringVar(&f.Summary, "github-summary", sum, "append a Markdown summary to this file (default $GITHUB_STEP_SUMMARY in GitHub Actions)")
}

// Set appends the output name=value; a value with a newline is written in the heredoc form with a
// random delimiter, so that no value can end it early.
func (f Files) Set(name, value string) error {
	if f.Output == "" {
		return nil
	}
	if strings.ContainsAny(name, "=\n\r<") || name == "" {
		return fmt.Errorf("invalid output name %q", name)
	}
	line := name + "=" + value + "\n"
	if strings.ContainsAny(value, "\n\r") {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		d := "ghadelimiter_" + hex.EncodeToString(b)
		line = name + "<<" + d + "\n" + value + "\n" + d + "\n"
	}
	return appendFile(f.Output, line)
}

// SetLines sets name to values, one per line.
func (f Files) SetLines(name string, values []string) error {
	return f.Set(name, strings.Join(values, "\n"))
}

// AddSummary appends Markdown to the summary.
func (f Files) AddSummary(markdown string) error {
	if f.Summary == "" {
		return nil
	}
	if !strings.HasSuffix(markdown, "\n") {
		markdown += "\n"
	}
	return appendFile(f.Summary, markdown)
}

func appendFile(path, s string) error {
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("CI output %s: %w", path, err)
	}
	_, werr := fh.WriteString(s)
	if cerr := fh.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("CI output %s: %w", path, werr)
	}
	return nil
}

// Cell escapes s for a Markdown table cell: one line, no pipe, no HTML.
func Cell(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}
