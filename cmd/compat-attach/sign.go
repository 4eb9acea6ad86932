package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/opencontainers/go-digest"

	"github.com/compatkit/compatkit/cmd/compat-attach/internal/ciout"
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
	// sigRepo receives the bundles instead of the image's repository (cosign's COSIGN_REPOSITORY).
	sigRepo string
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
	fs.StringVar(&o.sigRepo, "signature-repository", os.Getenv("COSIGN_REPOSITORY"), "push the signature bundles to this repository instead of the image's (default $COSIGN_REPOSITORY)")
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
	referrers []string
	cue       cueOptions
	image     string
	ci        ciout.Files
}

func signCmd() *cobra.Command {
	var opts signCmdOptions
	cmd := &cobra.Command{
		Use:   "sign IMAGE (--spec FILE | --referrer DIGEST...) [--platform os/arch[/variant]]... --key FILE | --keyless",
		Short: "Sign compatibility specs attached earlier (sigstore bundle referrers)",
		Long: `Sign specs attached earlier, each with an in-toto v1 statement (subject: the image digest;
predicate: the spec and its referrer's digest, predicateType
https://compatkit.dev/attestations/image-compatibility/v1) in a DSSE envelope, in a sigstore bundle
v0.3 pushed as a referrer of the image in cosign's layout, so that 'cosign verify-attestation' and
Kyverno check it too. 'attach --sign' does the same right after attaching.

Say what to sign; a signer never signs "the newest spec", which anyone with push rights can replace:
  --spec FILE        the document given to attach: for each subject (the manifests of --platform;
                     without, every subject with a spec), the newest referrer whose spec equals
                     what FILE compiles to;
  --referrer DIGEST  that spec referrer (as 'compat-attach discover' lists it), attached to IMAGE
                     or to one of its manifests; repeatable.
A spec dated in the future (beyond a few minutes of clock skew) is refused: it would stay the
newest. With --signature-repository (or COSIGN_REPOSITORY), the bundles are pushed there instead of
beside the image, as cosign does.`,
		Example: `  # Sign what you attached, with a cosign key pair (compat-attach generate-key-pair, or cosign's)
  COSIGN_PASSWORD=... compat-attach sign --plain-http localhost:5000/hello:1.0 --key cosign.key --spec compat.cue

  # Sign one referrer listed by discover
  compat-attach sign --plain-http localhost:5000/hello:1.0 --key cosign.key --referrer sha256:5f1c...

  # Keyless in GitHub Actions (permissions: id-token: write), public sigstore
  compat-attach sign ghcr.io/org/app:1.0 --platform linux/amd64/v3 --spec compat.cue --keyless

  # Keyless against a private sigstore
  compat-attach sign reg/app:1.0 --spec compat.cue --keyless --identity-token "$TOKEN" --fulcio-url https://fulcio.internal --rekor-url https://rekor.internal`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.output.validate(); err != nil {
				return err
			}
			if !opts.sign.given() {
				return usagef("say how to sign: --key FILE or --keyless")
			}
			switch {
			case len(opts.specFiles) > 0 && len(opts.referrers) > 0:
				return usagef("give --spec or --referrer, not both")
			case len(opts.specFiles) > 0:
				return oneDocument(opts.specFiles)
			case len(opts.referrers) > 0:
				if len(opts.platforms) > 0 {
					return usagef("--referrer names its subject already: drop --platform")
				}
				for _, r := range opts.referrers {
					if _, err := digest.Parse(r); err != nil {
						return usagef("--referrer %q is not a digest (sha256:<64 hex>): %v", r, err)
					}
				}
				return nil
			}
			return usageNext(fmt.Errorf("say what to sign: --spec FILE (the document you attached) or --referrer DIGEST: the newest spec is whatever someone pushed last"),
				fmt.Sprintf("compat-attach sign %s --spec compat.cue %s", opts.image, signFlags(&opts.sign)))
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runSign(cmd, &opts) },
	}
	opts.target.bind(cmd.Flags())
	opts.sign.bind(cmd.Flags())
	opts.ci.Bind(cmd.Flags())
	opts.output.bind(cmd.Flags(), "text", "text", "json")
	cmd.Flags().StringArrayVar(&opts.platforms, "platform", nil, "with --spec: sign the spec of this platform's manifest (os/arch[/variant]); repeatable")
	cmd.Flags().StringArrayVar(&opts.specFiles, "spec", nil, "sign the specs equal to what this document compiles to (.cue, .yaml, .json); repeat for the .cue files of one package")
	cmd.Flags().StringArrayVar(&opts.referrers, "referrer", nil, "sign this spec referrer (sha256:...), as discover lists it; repeatable")
	opts.cue.bind(cmd.Flags())
	return cmd
}

// signFlags renders the signing flags for a "Next:" hint.
func signFlags(o *signOptions) string {
	if o.keyless {
		return "--keyless"
	}
	return "--key " + o.key
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

// signTarget is a spec referrer to sign and its subject.
type signTarget struct {
	subject  ocispec.Descriptor
	platform string
	ref      ocispec.Descriptor
	s        *spec.Spec
	copies   []ocispec.Descriptor // other referrers holding the same spec, left unsigned
}

func runSign(cmd *cobra.Command, opts *signCmdOptions) error {
	ctx := cmd.Context()
	img, err := opts.target.image(ctx, opts.image, nil)
	if err != nil {
		return err
	}
	// Find every spec before signing anything.
	var targets []signTarget
	if len(opts.referrers) > 0 {
		targets, err = referrerTargets(ctx, img, opts.referrers, opts.target.ref(opts.image))
	} else {
		targets, err = specFileTargets(ctx, img, opts)
	}
	if err != nil {
		return err
	}
	for _, tg := range targets {
		if len(tg.copies) > 0 {
			var refs []string
			for _, c := range tg.copies {
				refs = append(refs, img.Ref(c))
			}
			cmd.PrintErrln(display.Line(fmt.Sprintf("note: %d other referrers of %s hold the same spec (%s): the oldest, %s, is signed and they stay unsigned; a copy dated later would make this document the newest signed one (sign one with --referrer if that is what you mean)",
				len(tg.copies), img.Ref(tg.subject), strings.Join(refs, ", "), img.Ref(tg.ref))))
		}
	}
	signer, err := opts.sign.signer(ctx)
	if err != nil {
		return err
	}
	sigRepo, err := openSignatureRepository(ctx, opts.sign.sigRepo, &opts.target)
	if err != nil {
		return err
	}
	var results signOutput
	for _, tg := range targets {
		res, err := signSpec(ctx, img, tg.subject, tg.platform, tg.ref, tg.s, signer, sigRepo)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	var bundles, specs []string
	for _, r := range results {
		bundles, specs = append(bundles, r.Bundle), append(specs, r.Spec)
	}
	if err := opts.ci.SetLines("bundles", bundles); err != nil {
		return err
	}
	if err := opts.ci.SetLines("referrers", specs); err != nil {
		return err
	}
	return display.Print(cmd.OutOrStdout(), opts.output.format, results)
}

// specFileTargets finds, for each subject, the referrer whose spec equals the document's (the
// oldest such: decide.FindAttached).
func specFileTargets(ctx context.Context, img *decide.Image, opts *signCmdOptions) ([]signTarget, error) {
	t := img.Reader().Target()
	var jobs []signTarget
	if len(opts.platforms) > 0 {
		if !img.Tree.IsIndex() {
			return nil, usagef("%s is a single manifest: --platform needs an index", opts.image)
		}
		for _, p := range opts.platforms {
			e, err := img.Named(p)
			if err != nil {
				return nil, withNext(fmt.Errorf("%s: %w", opts.image, err), "name a platform the index lists")
			}
			jobs = append(jobs, signTarget{subject: e.Descriptor, platform: p})
		}
	} else {
		entries, err := t.DiscoverTree(ctx, img.Tree)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !seen[e.Subject.Digest.String()] {
				seen[e.Subject.Digest.String()] = true
				p := ""
				if e.Subject.Platform != nil {
					p = oci.FormatPlatform(e.Subject.Platform)
				}
				jobs = append(jobs, signTarget{subject: e.Subject, platform: p})
			}
		}
		if len(jobs) == 0 {
			return nil, withNext(fmt.Errorf("%w: nothing to sign in %s", oci.ErrNoSpec, opts.image), "attach a spec first: `compat-attach attach %s --spec FILE --sign ...`", opts.target.ref(opts.image))
		}
	}
	want, err := author.Compile(ctx, opts.specFiles, opts.cue.options())
	if err != nil {
		return nil, compileNext(err, opts.specFiles[0])
	}
	for i := range jobs {
		j := &jobs[i]
		platform := j.platform
		if j.subject.Platform == nil {
			platform = "" // the index itself: the document's top-level spec
		}
		expected, err := want.For(platform)
		if err != nil {
			return nil, err
		}
		if j.ref, j.s, j.copies, err = decide.FindAttached(ctx, t, j.subject, expected); err != nil {
			return nil, withNext(err, "attach it first with `compat-attach attach ... --spec FILE`, or check that --spec names the document you attached")
		}
	}
	return jobs, nil
}

// referrerTargets resolves each --referrer digest to a spec referrer of a subject of the image.
func referrerTargets(ctx context.Context, img *decide.Image, digests []string, imageRef string) ([]signTarget, error) {
	t := img.Reader().Target()
	subjects := map[digest.Digest]ocispec.Descriptor{img.Tree.Root.Digest: img.Tree.Root}
	for _, d := range img.Tree.Indexes {
		subjects[d.Digest] = d
	}
	for _, e := range img.Tree.Manifests {
		subjects[e.Descriptor.Digest] = e.Descriptor
	}
	var out []signTarget
	for _, r := range digests {
		d := digest.Digest(r)
		desc, err := t.Store().Resolve(ctx, r)
		if err != nil {
			return nil, withNext(fmt.Errorf("--referrer %s: %w", r, err), "list the spec referrers with `compat-attach discover %s`", imageRef)
		}
		if desc.Digest != d {
			return nil, fmt.Errorf("--referrer %s resolved to %s", r, desc.Digest)
		}
		desc.ArtifactType = spec.ArtifactType
		s, m, err := t.FetchSpec(ctx, desc)
		if err != nil {
			return nil, fmt.Errorf("--referrer %s: %w", r, err)
		}
		if m.Subject == nil {
			return nil, fmt.Errorf("--referrer %s has no subject: it describes no image", r)
		}
		sub, ok := subjects[m.Subject.Digest]
		if !ok {
			return nil, fmt.Errorf("--referrer %s describes %s, which is not %s nor one of its manifests", r, m.Subject.Digest, img.Ref(img.Tree.Root))
		}
		p := ""
		if sub.Platform != nil {
			p = oci.FormatPlatform(sub.Platform)
		}
		out = append(out, signTarget{subject: sub, platform: p, ref: desc, s: s})
	}
	return out, nil
}

// signSpec signs one spec referrer (its bundle pushed to sigRepo when not nil) and returns what to
// print.
func signSpec(ctx context.Context, img *decide.Image, subject ocispec.Descriptor, platform string, ref ocispec.Descriptor, s *spec.Spec, signer *signing.Signer, sigRepo *oci.Target) (signResult, error) {
	sig, err := signing.Sign(ctx, img.Reader().Target(), subject, ref, s, signer, signing.SignOptions{SignatureRepository: sigRepo})
	if err != nil {
		return signResult{}, err // signing.Sign names the spec referrer
	}
	bundle := img.Ref(sig.Bundle)
	if sigRepo != nil {
		bundle = sigRepo.Name() + "@" + sig.Bundle.Digest.String()
	}
	return signResult{Subject: img.Ref(subject), Platform: platform, Spec: img.Ref(ref), Bundle: bundle, Signer: signer.Identity, Existing: sig.Existing}, nil
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
