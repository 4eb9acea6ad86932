package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/compatkit/compatkit/internal/fileutil"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PEM block types of key files.
const (
	// PEMTypeCosignEncrypted is cosign's encrypted private key: a JSON document of
	// go-securesystemslib's encrypted package (scrypt + NaCl secretbox) around a PKCS#8 key.
	PEMTypeCosignEncrypted = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemTypePKCS8           = "PRIVATE KEY"
	pemTypeEC              = "EC PRIVATE KEY"
	pemTypePublic          = "PUBLIC KEY"
)

// PassFunc returns the password of an encrypted key; confirm asks for it twice (new keys).
type PassFunc func(confirm bool) ([]byte, error)

// Keypair is a sign.Keypair over a long-lived crypto.Signer (ECDSA P-256/P-384/P-521 or Ed25519).
// Its hint is base64(sha256(PKIX DER of the public key)), as sigstore-go's ephemeral keys.
type Keypair struct {
	signer  crypto.Signer
	details signature.AlgorithmDetails
	hint    []byte
}

var _ sign.Keypair = (*Keypair)(nil)

// NewKeypair wraps s as a sign.Keypair with sigstore's default algorithm for its key.
func NewKeypair(s crypto.Signer) (*Keypair, error) {
	pub := s.Public()
	var alg protocommon.PublicKeyDetails
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
		case elliptic.P384():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
		case elliptic.P521():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
		default:
			return nil, fmt.Errorf("%w: unsupported ECDSA curve %s", ErrInvalidKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		alg = protocommon.PublicKeyDetails_PKIX_ED25519
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T: use ECDSA P-256 or Ed25519", ErrInvalidKey, pub)
	}
	details, err := signature.GetAlgorithmDetails(alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	hint, err := KeyHint(pub)
	if err != nil {
		return nil, err
	}
	return &Keypair{signer: s, details: details, hint: []byte(hint)}, nil
}

// KeyHint is base64(sha256(PKIX DER of pub)), the keyid sigstore bundles carry for public keys.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// GetHashAlgorithm returns the hash of the signing algorithm.
func (k *Keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.details.GetProtoHashType() }

// GetSigningAlgorithm returns the signing algorithm.
func (k *Keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.details.GetSignatureAlgorithm()
}

// GetHint returns the key hint (KeyHint).
func (k *Keypair) GetHint() []byte { return k.hint }

// GetKeyAlgorithm returns "ECDSA" or "ED25519" (Fulcio's names).
func (k *Keypair) GetKeyAlgorithm() string {
	switch k.details.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.ED25519:
		return "ED25519"
	case signature.RSA:
		return "RSA"
	}
	return ""
}

// GetPublicKey returns the public key.
func (k *Keypair) GetPublicKey() crypto.PublicKey { return k.signer.Public() }

// GetPublicKeyPem returns the public key as a PEM "PUBLIC KEY" block (PKIX).
func (k *Keypair) GetPublicKeyPem() (string, error) {
	b, err := MarshalPublicKey(k.signer.Public())
	return string(b), err
}

// SignData signs data: the digest for ECDSA, the data itself for Ed25519. It returns the
// signature and what was signed.
func (k *Keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.details.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	sig, err := k.signer.Sign(rand.Reader, toSign, hf)
	if err != nil {
		return nil, nil, err
	}
	return sig, toSign, nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" block (PKIX), the form of cosign.pub.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePublic, Bytes: der}), nil
}

// ParsePrivateKey parses a PEM private key: PKCS#8 ("PRIVATE KEY": ECDSA or Ed25519), SEC1
// ("EC PRIVATE KEY"), or cosign's encrypted key (PEMTypeCosignEncrypted), whose password pass
// supplies. source names the key in errors.
func ParsePrivateKey(data []byte, source string, pass PassFunc) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block: expected a PEM private key or a cosign key (cosign generate-key-pair, compat-attach generate-key-pair)", ErrInvalidKey, source)
	}
	var key any
	var err error
	switch block.Type {
	case PEMTypeCosignEncrypted:
		if pass == nil {
			return nil, fmt.Errorf("%w: %s is encrypted and no password is available: set COSIGN_PASSWORD", ErrInvalidKey, source)
		}
		pw, perr := pass(false)
		if perr != nil {
			return nil, fmt.Errorf("%w: %s: reading the password: %v", ErrInvalidKey, source, perr)
		}
		der, derr := encrypted.Decrypt(block.Bytes, pw)
		if derr != nil {
			return nil, fmt.Errorf("%w: %s: decrypting: %v: check the password (COSIGN_PASSWORD)", ErrInvalidKey, source, derr)
		}
		key, err = x509.ParsePKCS8PrivateKey(der)
	case pemTypePKCS8:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemTypeEC:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: %s: PEM block %q: expected PRIVATE KEY, EC PRIVATE KEY or %s", ErrInvalidKey, source, block.Type, PEMTypeCosignEncrypted)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, source, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %s: unsupported key type %T", ErrInvalidKey, source, key)
	}
	switch s.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: %s: unsupported key type %T: use ECDSA P-256 or Ed25519", ErrInvalidKey, source, key)
	}
	return s, nil
}

// maxKeyBytes bounds key files: a PEM key is a few hundred bytes.
const maxKeyBytes = 64 << 10

// LoadPrivateKey reads and parses a private key file (ParsePrivateKey).
func LoadPrivateKey(path string, pass PassFunc) (crypto.Signer, error) {
	data, err := fileutil.ReadLimited(path, maxKeyBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return ParsePrivateKey(data, path, pass)
}

// ParsePublicKey parses a PEM "PUBLIC KEY" (PKIX) block, e.g. cosign.pub.
func ParsePublicKey(data []byte, source string) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemTypePublic {
		return nil, fmt.Errorf("%w: %s: expected a PEM PUBLIC KEY block (e.g. cosign.pub)", ErrInvalidKey, source)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, source, err)
	}
	return pub, nil
}

// LoadPublicKey reads and parses a public key file (ParsePublicKey).
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := fileutil.ReadLimited(path, maxKeyBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return ParsePublicKey(data, path)
}

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's format: the private key as PKCS#8
// encrypted with password (go-securesystemslib encrypted: scrypt + secretbox) in a PEM block
// PEMTypeCosignEncrypted, and the public key as PEM "PUBLIC KEY". An empty password is allowed, as
// in cosign.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, err
	}
	pubPEM, err = MarshalPublicKey(priv.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMTypeCosignEncrypted, Bytes: enc}), pubPEM, nil
}
