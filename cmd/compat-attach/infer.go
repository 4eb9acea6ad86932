package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/infer"
	"github.com/compatkit/compatkit/pkg/oci"
)

type inferOptions struct {
	target      targetOptions
	output      outputOption
	platforms   []string
	maxBytes    int64
	maxFiles    int
	maxFileSize int64
	maxUnpacked int64
	timeout     time.Duration
	// --attach: attach the inferred document at once, with attach's flags.
	attach    bool
	attachDir string
	att       attachOptions
}

func inferCmd() *cobra.Command {
	var opts inferOptions
	cmd := &cobra.Command{
		Use:   "infer IMAGE [--platform os/arch[/variant]]... [-o cue|yaml]",
		Short: "Derive a compat.cue from what the image holds (reads its layers)",
		Long: `Read the image's config and layers and print a compat.cue that says what the image needs of a
host, one // comment per requirement citing its evidence (a path in the image and what was read):

  ELF binaries   e_machine against the platform (a mismatch is a warning); the NT_GNU_ABI_TAG
                 note (.note.ABI-tag): the lowest Linux kernel, highest over the binaries; the
                 x86-64 ISA level of .note.gnu.property (GNU_PROPERTY_X86_ISA_1_NEEDED)
  Go binaries    build info: GOAMD64 (x86-64 level), GOARM64, CGO_ENABLED, the Go version's
                 lowest kernel (3.2 since Go 1.24)
  config Env     NVIDIA_REQUIRE_CUDA and CUDA_VERSION: an NVIDIA GPU and driver (gpu/nvidia)
  annotations    org.opencontainers.image.base.name/.digest: the base whose spec attach --base
                 inherits (a comment)

For an index, one platforms entry per platform manifest (attestation manifests skipped;
--platform filters: one without a variant takes every variant of its os/arch). This is the one
command that pulls layers: it prints "infer: reading N layers (X MB) of IMAGE" on stderr, streams
them through gzip/zstd and tar without writing to disk, checks each layer against its digest,
applies layers in order (a binary removed by a later layer's whiteout, or replaced, does not count),
follows no links, reads into memory only regular files that start with the ELF magic and are at
most --max-file-size. --max-bytes (compressed bytes of all layers), --max-uncompressed-bytes,
--max-files (tar entries) and --timeout (the whole command) bound the work; a layer that breaks a
limit, does not decode or does not match its digest is an error naming the layer digest (and the
path being read). -o yaml prints the compiled NFD spec of each platform instead.

Review the output before attaching it: compat-attach vet, then attach --spec. --attach attaches it
at once, as 'attach IMAGE --spec' would (the same flags: --sign with --key or --keyless, --base,
--skip-unchanged, --created), and prints the document on stderr; --save-to DIR also keeps it as
DIR/compat.cue.`,
		Example: `  # Infer the spec of the example image and attach it
  compat-attach infer --oci-layout examples/hello/build/oci:1.0 > compat.cue
  compat-attach vet compat.cue
  compat-attach attach --oci-layout examples/hello/build/oci:1.0 --spec compat.cue

  # Only the arm64 manifest of an image in a registry, as the compiled NFD spec
  compat-attach infer registry.example/app:1.0 --platform linux/arm64 -o yaml

  # Retrofit an image in production: infer, attach and sign in one step (idempotent)
  compat-attach infer registry.example/app:1.0 --attach --skip-unchanged --sign --keyless

  # A large image: allow 8 GiB of layers and 20 minutes
  compat-attach infer registry.example/cuda-app:1.0 --max-bytes 8589934592 --timeout 20m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.output.validate(); err != nil {
				return err
			}
			if !opts.attach && (opts.att.doSign || opts.att.sign.given() || opts.att.base.ref != "" || opts.att.unchanged || opts.att.created != "" || opts.attachDir != "") {
				return usagef("--sign, --key, --keyless, --base, --skip-unchanged, --created and --save-to go with --attach")
			}
			if !opts.att.doSign && opts.att.sign.given() {
				return usagef("--key and --keyless sign: add --sign")
			}
			if opts.att.created != "" {
				t, err := time.Parse(time.RFC3339, opts.att.created)
				if err != nil {
					return usagef("--created %q is not RFC 3339 (e.g. 2026-01-02T15:04:05Z)", opts.att.created)
				}
				opts.att.createdAt = t.UTC()
			}
			return runInfer(cmd, args[0], &opts)
		},
	}
	fs := cmd.Flags()
	opts.target.bind(fs)
	opts.output.bind(fs, "cue", "cue", "yaml")
	fs.StringArrayVar(&opts.platforms, "platform", nil, "infer only the manifests of this platform, os/arch[/variant] (repeatable)")
	fs.Int64Var(&opts.maxBytes, "max-bytes", infer.DefaultMaxBytes, "read at most this many compressed layer bytes in all")
	fs.Int64Var(&opts.maxUnpacked, "max-uncompressed-bytes", infer.DefaultMaxUncompressedBytes, "read at most this many decompressed layer bytes in all (a compression bomb stops here)")
	fs.IntVar(&opts.maxFiles, "max-files", infer.DefaultMaxFiles, "examine at most this many tar entries in all")
	fs.Int64Var(&opts.maxFileSize, "max-file-size", infer.DefaultMaxFileSize, "skip ELF files larger than this many bytes (each is held in memory)")
	fs.DurationVar(&opts.timeout, "timeout", 10*time.Minute, "give up after this long (the whole command)")
	fs.BoolVar(&opts.attach, "attach", false, "attach the inferred document to the image at once (as attach --spec; prints it on stderr)")
	fs.StringVar(&opts.attachDir, "save-to", "", "with --attach: keep the attached document as DIR/compat.cue")
	fs.BoolVar(&opts.att.doSign, "sign", false, "with --attach: sign each attached spec with --key FILE or --keyless")
	opts.att.sign.bind(fs)
	opts.att.base.bind(fs)
	fs.BoolVar(&opts.att.unchanged, "skip-unchanged", false, "with --attach: attach nothing where the newest spec equals the inferred one")
	fs.StringVar(&opts.att.created, "created", "", "with --attach: creation time to record (RFC 3339; default now)")
	return cmd
}

func runInfer(cmd *cobra.Command, image string, opts *inferOptions) error {
	if opts.maxBytes <= 0 || opts.maxFiles <= 0 || opts.maxFileSize <= 0 || opts.maxUnpacked <= 0 || opts.timeout <= 0 {
		return usagef("--max-bytes, --max-uncompressed-bytes, --max-files, --max-file-size and --timeout must be positive")
	}
	var platforms []ocispec.Platform
	for _, p := range opts.platforms {
		pl, err := oci.ParsePlatform(p)
		if err != nil {
			return usagef("--platform: %v", err)
		}
		platforms = append(platforms, pl)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
	defer cancel()
	// The layers are read through the process session, whose byte budget (the global
	// --max-bytes, which this command's own flag replaces) must leave room for them.
	s := sessionFrom(ctx)
	if s.session.MaxBytes < opts.maxBytes+oci.DefaultMaxBytes {
		s.session.MaxBytes = opts.maxBytes + oci.DefaultMaxBytes
	}
	t, err := opts.target.open(ctx, image)
	if err != nil {
		return err
	}
	res, err := infer.Infer(ctx, t, infer.Options{
		Platforms: platforms,
		Limits: infer.Limits{MaxBytes: opts.maxBytes, MaxUncompressedBytes: opts.maxUnpacked,
			MaxFiles: opts.maxFiles, MaxFileSize: opts.maxFileSize},
		Progress: cmd.ErrOrStderr(),
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("infer: %w: raise --timeout (%s)", err, opts.timeout)
	}
	if err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	for _, m := range res.Manifests {
		for _, w := range m.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", m.PlatformKey(), w)
		}
		for _, sk := range m.Scan.Skipped {
			fmt.Fprintf(cmd.ErrOrStderr(), "skipped: %s: %s\n", m.PlatformKey(), sk)
		}
	}
	if opts.attach {
		return attachInferred(cmd, image, opts, res.CUE())
	}
	if opts.output.format == "cue" {
		_, err := cmd.OutOrStdout().Write(res.CUE())
		return err
	}
	compiled, err := res.Compile(ctx, author.Options{})
	if err != nil {
		return fmt.Errorf("infer %s: the inferred document does not compile (a bug, please report it): %w", image, err)
	}
	out := cmd.OutOrStdout()
	if compiled.Default != nil {
		if err := writeSpec(out, "yaml", compiled.Default); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(compiled.Platforms))
	for k := range compiled.Platforms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "---\n# %s\n", k)
		if err := writeSpec(out, "yaml", compiled.Platforms[k]); err != nil {
			return err
		}
	}
	return nil
}

// attachInferred attaches doc, the inferred compat.cue, to image as `attach IMAGE --spec` does,
// with the attach flags given to infer; the document is printed on stderr (and kept in --save-to).
func attachInferred(cmd *cobra.Command, image string, opts *inferOptions, doc []byte) error {
	dir := opts.attachDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "compat-infer-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--save-to %s: %w", dir, err)
	}
	file := filepath.Join(dir, "compat.cue")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		return fmt.Errorf("--save-to %s: %w", dir, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "infer: attaching this document to %s:\n%s", image, doc)
	a := opts.att
	a.target = opts.target
	a.output = outputOption{format: "text"}
	a.images = []string{image}
	a.specFiles = []string{file}
	a.conc = 1
	return runAttach(cmd, &a)
}
