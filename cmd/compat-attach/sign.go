package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/display"
	"github.com/compatkit/compatkit/pkg/author"
	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
	"github.com/compatkit/compatkit/pkg/spec"
)

// signOptions says how to sign: a private key file or keyless (Fulcio, Rekor, TSA).
type signOptions struct {
	key           string
	keyless       bool
	identityToken string
	fulcioURL     string
	rekorURL      string
	tsaURL        string
	signingConfig string
	trustedRoot   string
}

func (o *signOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.key, "key", "", "sign with this private key (PEM PKCS#8/SEC1, or a cosign key; its password from COSIGN_PASSWORD or a prompt)")
	fs.BoolVar(&o.keyless, "keyless", false, "sign keyless: an ephemeral key and a Fulcio certificate for an OIDC token, logged in Rekor, timestamped")
	fs.StringVar(&o.identityToken, "identity-token", "", "keyless: the OIDC identity token (default: GitHub Actions' token)")
	fs.StringVar(&o.fulcioURL, "fulcio-url", "", "keyless: Fulcio URL (default: from the signing config)")
	fs.StringVar(&o.rekorURL, "rekor-url", "", "keyless: Rekor URL (default: from the signing config)")
	fs.StringVar(&o.tsaURL, "tsa-url", "", "keyless: timestamp authority URL (default: from the signing config)")
	fs.StringVar(&o.signingConfig, "signing-config", "", "keyless: sigstore signing_config.json (default: sigstore's public one through TUF)")
	fs.StringVar(&o.trustedRoot, "trusted-root", "", "keyless: verify each new signature against this trusted_root.json")
}

func (o *signOptions) given() bool { return o.key != "" || o.keyless }

func (o *signOptions) signer(ctx context.Context) (*signing.Signer, error) {
	switch {
	case o.key != "" && o.keyless:
		return nil, usagef("give --key FILE or --keyless, not both")
	case o.key != "":
		k, err := signing.LoadPrivateKey(o.key, passwordFunc(o.key))
		if err != nil {
			return nil, withNext(err, "make a key pair with `compat-attach generate-key-pair` (or cosign's), and set COSIGN_PASSWORD")
		}
		return signing.KeySigner(k)
	case o.keyless:
		s, err := signing.NewKeylessSigner(ctx, signing.KeylessOptions{
			IDToken: o.identityToken, FulcioURL: o.fulcioURL, RekorURL: o.rekorURL, TSAURL: o.tsaURL,
			SigningConfig: o.signingConfig, TrustedRoot: o.trustedRoot,
		})
		if err != nil {
			return nil, withNext(err, "give --identity-token, or run in GitHub Actions with `permissions: id-token: write`; for a private sigstore, --fulcio-url/--rekor-url/--tsa-url or --signing-config")
		}
		return s, nil
	}
	return nil, usagef("say how to sign: --key FILE or --keyless")
}

// passwordFunc reads a key's password from COSIGN_PASSWORD (even empty) or the terminal.
func passwordFunc(what string) signing.PassFunc {
	return func(confirm bool) ([]byte, error) {
		if pw, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
			return []byte(pw), nil
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return nil, errors.New("COSIGN_PASSWORD is not set and stdin is not a terminal")
		}
		fmt.Fprintf(os.Stderr, "Password for %s: ", what)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil || !confirm {
			return pw, err
		}
		fmt.Fprintf(os.Stderr, "Password again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, errors.New("the passwords differ")
		}
		return pw, nil
	}
}

type signCmdOptions struct {
	target    targetOptions
	sign      signOptions
	output    outputOption
	platforms []string
	specFiles []string
	cue       cueOptions
	image     string
}

func signCmd() *cobra.Command {
	var opts signCmdOptions
	cmd := &cobra.Command{
		Use:   "sign IMAGE [--platform os/arch[/variant]]... --key FILE | --keyless",
		Short: "Sign the newest compatibility spec of each subject of an image (sigstore bundle referrer)",
		Long: `Sign specs attached earlier: for each subject (the manifests of --platform; without --platform, the
image and every manifest of its index that has a spec), the newest spec is signed with an in-toto v1
statement (subject: the image digest; predicate: the spec and its referrer's digest, predicateType
https://compatkit.dev/attestations/image-compatibility/v1) in a DSSE envelope, in a sigstore bundle
v0.3 pushed as a referrer of the image in cosign's layout, so that 'cosign verify-attestation' and
Kyverno check it too. 'attach --sign' does the same right after attaching.

With --spec FILE (the document given to attach), only a spec equal to what FILE compiles to is
signed, the newest such referrer of each subject: a spec someone else pushed since is never signed
by mistake. Without --spec, the newest spec of each subject is signed as found in the registry.`,
		Example: `  # Sign with a cosign key pair (compat-attach generate-key-pair, or cosign generate-key-pair)
  COSIGN_PASSWORD=... compat-attach sign --plain-http localhost:5000/hello:1.0 --key cosign.key --spec compat.cue

  # Keyless in GitHub Actions (permissions: id-token: write), public sigstore
  compat-attach sign ghcr.io/org/app:1.0 --platform linux/amd64/v3 --keyless

  # Keyless against a private sigstore
  compat-attach sign reg/app:1.0 --keyless --identity-token "$TOKEN" --fulcio-url https://fulcio.internal --rekor-url https://rekor.internal`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			if !opts.sign.given() {
				return usagef("say how to sign: --key FILE or --keyless")
			}
			if len(opts.specFiles) > 0 {
				return oneDocument(opts.specFiles)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runSign(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.sign.bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	cmd.Flags().StringArrayVar(&opts.platforms, "platform", nil, "sign the spec of this platform's manifest (os/arch[/variant]); repeatable")
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "sign only specs equal to what this document compiles to (.cue, .yaml, .json); repeat for the .cue files of one package")
	opts.cue.bind(cmd.Flags())
	return cmd
}

// signResult is what sign (and attach --sign) prints per signature.
type signResult struct {
	Subject  string `json:"subject"`
	Platform string `json:"platform,omitempty"`
	Spec     string `json:"spec"`
	Bundle   string `json:"bundle"`
	Signer   string `json:"signer"`
	// Existing is true when the spec was already signed by this key and nothing was pushed.
	Existing bool `json:"existing,omitempty"`
}

func runSign(cmd *cobra.Command, opts *signCmdOptions) error {
	ctx := cmd.Context()
	img, err := opts.target.image(ctx, opts.image, nil)
	if err != nil {
		return err
	}
	t := img.Reader().Target()
	type job struct {
		subject  ocispec.Descriptor
		platform string
	}
	var jobs []job
	if len(opts.platforms) > 0 {
		if !img.Tree.IsIndex() {
			return usagef("%s is a single manifest: --platform needs an index", opts.image)
		}
		for _, p := range opts.platforms {
			e, err := img.Named(p)
			if err != nil {
				return withNext(fmt.Errorf("%s: %w", opts.image, err), "name a platform the index lists")
			}
			jobs = append(jobs, job{e.Descriptor, p})
		}
	} else {
		entries, err := t.DiscoverTree(ctx, img.Tree)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !seen[e.Subject.Digest.String()] {
				seen[e.Subject.Digest.String()] = true
				p := ""
				if e.Subject.Platform != nil {
					p = oci.FormatPlatform(e.Subject.Platform)
				}
				jobs = append(jobs, job{e.Subject, p})
			}
		}
		if len(jobs) == 0 {
			return withNext(fmt.Errorf("%w: nothing to sign in %s", oci.ErrNoSpec, opts.image), "attach a spec first: `compat-attach attach %s --spec FILE --sign ...`", opts.target.ref(opts.image))
		}
	}
	// Find every spec before signing anything.
	type target struct {
		job
		ref ocispec.Descriptor
		s   *spec.Spec
	}
	var targets []target
	var want *author.Result
	if len(opts.specFiles) > 0 {
		if want, err = author.Compile(ctx, opts.specFiles, opts.cue.options()); err != nil {
			return withNext(err, "run `compat-attach vet %s` and fix the problems above", opts.specFiles[0])
		}
	} else {
		cmd.PrintErrln("note: signing the newest spec of each subject as found in the registry; --spec FILE signs only the spec you wrote")
	}
	for _, j := range jobs {
		if want == nil {
			s, ref, err := t.NewestSpec(ctx, j.subject)
			if err != nil {
				return withNext(err, "attach a spec first with `compat-attach attach`")
			}
			targets = append(targets, target{j, ref, s})
			continue
		}
		platform := j.platform
		if j.subject.Platform == nil {
			platform = "" // the index itself: the document's top-level spec
		}
		expected, err := want.For(platform)
		if err != nil {
			return err
		}
		ref, s, err := decide.FindAttached(ctx, t, j.subject, expected)
		if err != nil {
			return withNext(err, "attach it first with `compat-attach attach ... --spec FILE`, or check that --spec names the document you attached")
		}
		targets = append(targets, target{j, ref, s})
	}
	signer, err := opts.sign.signer(ctx)
	if err != nil {
		return err
	}
	var results signOutput
	for _, tg := range targets {
		res, err := signSpec(ctx, img, tg.subject, tg.platform, tg.ref, tg.s, signer)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return display.Print(cmd.OutOrStdout(), opts.output.format, results)
}

// signSpec signs one spec referrer and returns what to print.
func signSpec(ctx context.Context, img *decide.Image, subject ocispec.Descriptor, platform string, ref ocispec.Descriptor, s *spec.Spec, signer *signing.Signer) (signResult, error) {
	sig, err := signing.Sign(ctx, img.Reader().Target(), subject, ref, s, signer, signing.SignOptions{})
	if err != nil {
		return signResult{}, err // signing.Sign names the spec referrer
	}
	return signResult{Subject: img.Ref(subject), Platform: platform, Spec: img.Ref(ref), Bundle: img.Ref(sig.Bundle), Signer: signer.Identity, Existing: sig.Existing}, nil
}

// signOutput is the model sign prints.
type signOutput []signResult

// Text implements display.Texter.
func (rs signOutput) Text(w io.Writer) error {
	for _, s := range rs {
		if s.Existing {
			fmt.Fprintf(w, "Already signed %s with %s: bundle %s (nothing pushed)\n", s.Spec, s.Signer, s.Bundle)
			continue
		}
		fmt.Fprintf(w, "Signed %s with %s: bundle %s\n", s.Spec, s.Signer, s.Bundle)
	}
	return nil
}
