package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/coolpy7/coolpy7/loadgen"
)

// chartCmd draws the comparison of several --json results.
func chartCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cp7bench chart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("o", ".", "`directory` for the SVG charts, one per scenario name")
	md := fs.String("md", "", "markdown table `file` (default: results.md in -o)")
	base := fs.String("base", "", "broker `label` the ratios are relative to (default: the first one)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: cp7bench chart [flags] result.json...\n\n"+
			"Reads results written by --json (labelled with --name and --broker)\n"+
			"and draws one SVG per scenario name, a bar per broker and metric,\n"+
			"plus a markdown table of the figures and their ratios.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	rs, err := loadgen.LoadResults(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench chart:", err)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "cp7bench chart:", err)
		return 1
	}
	files, err := loadgen.WriteCharts(*dir, rs)
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench chart:", err)
		return 1
	}
	if *md == "" {
		*md = filepath.Join(*dir, "results.md")
	}
	f, err := os.Create(*md)
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench chart:", err)
		return 1
	}
	err = loadgen.WriteMarkdown(f, rs, *base)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "cp7bench chart:", err)
		return 1
	}
	for _, p := range append(files, *md) {
		fmt.Fprintln(stdout, p)
	}
	return 0
}
