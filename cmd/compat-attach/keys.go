package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/compatkit/compatkit/pkg/signing"
)

type keysOptions struct {
	prefix string
}

func generateKeyPairCmd() *cobra.Command {
	var opts keysOptions
	cmd := &cobra.Command{
		Use:   "generate-key-pair [--output-key-prefix NAME]",
		Short: "Generate a cosign-compatible key pair (NAME.key encrypted, NAME.pub)",
		Long: `Generate an ECDSA P-256 key pair in cosign's format: NAME.key is the private key, PKCS#8 encrypted
with the password (scrypt + NaCl secretbox, PEM "ENCRYPTED SIGSTORE PRIVATE KEY"), NAME.pub the public
key (PEM PKIX). The password comes from COSIGN_PASSWORD, or is asked twice on the terminal. cosign
reads both files, and compat-attach reads cosign's.`,
		Example: `  COSIGN_PASSWORD=... compat-attach generate-key-pair
  compat-attach generate-key-pair --output-key-prefix build/release`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keyPath, pubPath := opts.prefix+".key", opts.prefix+".pub"
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Stat(p); err == nil {
					return withNext(fmt.Errorf("%s exists", p), "remove it, or choose another --output-key-prefix")
				}
			}
			pw, err := passwordFunc(keyPath)(true)
			if err != nil {
				return withNext(fmt.Errorf("reading the password for %s: %w", keyPath, err), "set COSIGN_PASSWORD")
			}
			priv, pub, err := signing.GenerateKeyPair(pw)
			if err != nil {
				return err
			}
			if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
				return errors.Join(err, os.Remove(keyPath))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.prefix, "output-key-prefix", "cosign", "write NAME.key and NAME.pub")
	return cmd
}
