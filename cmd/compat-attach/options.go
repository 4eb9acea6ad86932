package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/oci"
)

// targetOptions selects where IMAGE lives: a registry (the default) or an OCI image layout.
type targetOptions struct {
	ociLayout bool
	plainHTTP bool
}

func (o *targetOptions) bind(fs *pflag.FlagSet) {
	fs.BoolVar(&o.ociLayout, "oci-layout", false, "IMAGE is an OCI image layout: PATH[:TAG] or PATH@DIGEST")
	fs.BoolVar(&o.plainHTTP, "plain-http", false, "talk HTTP instead of HTTPS to the registry")
}

// ref renders IMAGE with the flags that locate it, for the commands printed in "Next:" hints.
func (o *targetOptions) ref(image string) string {
	switch {
	case o.ociLayout:
		return "--oci-layout " + image
	case o.plainHTTP:
		return "--plain-http " + image
	}
	return image
}

// guardLayout refuses a registry reference that names an OCI image layout on this machine
// (PATH[:TAG|@DIGEST] whose PATH holds an oci-layout file): the user forgot --oci-layout, and
// trying it as a registry would only end in a DNS error.
func (o *targetOptions) guardLayout(image string) error {
	if o.ociLayout {
		return nil
	}
	if path, _, err := oci.ParseLayoutReference(image); err == nil {
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err == nil {
			return &usageError{err: fmt.Errorf("%s is an OCI image layout on this machine: add --oci-layout", path)}
		}
	}
	return nil
}

func (o *targetOptions) options() oci.Options {
	return oci.Options{OCILayout: o.ociLayout, PlainHTTP: o.plainHTTP}
}

// platformOption is a single --platform os/arch[/variant].
type platformOption struct {
	raw string
}

func (o *platformOption) bind(fs *pflag.FlagSet, usage string) {
	fs.StringVar(&o.raw, "platform", "", usage)
}

// parse returns the platform, or nil when none was given.
func (o *platformOption) parse() (*ocispec.Platform, error) {
	if o.raw == "" {
		return nil, nil
	}
	p, err := oci.ParsePlatform(o.raw)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--platform %q: %w", o.raw, err)}
	}
	return &p, nil
}

// hostPlatform is the platform of this machine as os/arch.
func hostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// outputOption is -o/--output with a fixed set of formats.
type outputOption struct {
	format  string
	allowed []string
}

func (o *outputOption) bind(fs *pflag.FlagSet, def string, allowed ...string) {
	o.allowed = allowed
	fs.StringVarP(&o.format, "output", "o", def, fmt.Sprintf("output format: %v", allowed))
}

func (o *outputOption) validate() error {
	// "table" and "text" name the same human-readable output wherever one of them is offered.
	for _, alias := range [][2]string{{"table", "text"}, {"text", "table"}} {
		if o.format == alias[0] && !slices.Contains(o.allowed, alias[0]) && slices.Contains(o.allowed, alias[1]) {
			o.format = alias[1]
		}
	}
	for _, a := range o.allowed {
		if o.format == a {
			return nil
		}
	}
	return &exitError{code: exitUsage, msg: fmt.Sprintf("Error: unknown output format %q: use one of %v", o.format, o.allowed)}
}

// cueOptions says where CUE specs find domain modules beyond the embedded ones.
type cueOptions struct {
	path []string
}

func (o *cueOptions) bind(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.path, "cue-path", nil, "directory of extra domain modules, imported as compatkit.dev/domains/<dir> (repeatable; default $COMPATKIT_CUE_PATH)")
}

// options returns author.Options with positions relative to the working directory.
func (o *cueOptions) options() author.Options {
	wd, _ := os.Getwd()
	return author.Options{Dir: wd, CUEPath: o.path}
}
