package testkube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// ServingCert is a TLS serving certificate for 127.0.0.1 signed by a fresh CA, as the API server
// needs to call a webhook: CertFile and KeyFile (PEM) in a directory, and the CA's PEM for a
// webhook configuration's caBundle.
type ServingCert struct {
	CertFile, KeyFile string
	CA                []byte
}

// issue makes a fresh CA (ECDSA P-256, valid for a day) and a leaf certificate of tmpl signed by
// it, and writes the leaf's certificate and key, and the CA's certificate when caFile is not
// empty, as PEM files; it returns the CA's PEM.
func issue(tmpl *x509.Certificate, certFile, keyFile, caFile string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "compatkit test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.KeyUsage, tmpl.NotBefore, tmpl.NotAfter = x509.KeyUsageDigitalSignature, now.Add(-time.Hour), now.Add(24*time.Hour)
	leafDER, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
	if caFile != "" {
		files[caFile] = caPEM
	}
	for f, b := range files {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

// NewServingCert writes a certificate for IP 127.0.0.1 and DNS localhost, valid for a day, into
// dir.
func NewServingCert(dir string) (*ServingCert, error) {
	s := &ServingCert{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	var err error
	s.CA, err = issue(&x509.Certificate{Subject: pkix.Name{CommonName: "compatkit-webhook"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, s.CertFile, s.KeyFile, "")
	if err != nil {
		return nil, err
	}
	return s, nil
}

// RegisterWebhooks creates the MutatingWebhookConfigurations and ValidatingWebhookConfigurations
// of a manifest file (deploy/webhook-configurations.yaml), pointed at a webhook outside the
// cluster: each clientConfig's service becomes url (https://127.0.0.1:PORT) plus the service's
// path, with caBundle ca. Each configuration is renamed prefix-NAME and its webhooks only see the
// namespaces labelled compatkit.dev/test=prefix (so that tests of one cluster do not meet).
func (c *Cluster) RegisterWebhooks(ctx context.Context, file, url string, ca []byte, prefix string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	sel := metav1.LabelSelectorRequirement{Key: "compatkit.dev/test", Operator: metav1.LabelSelectorOpIn, Values: []string{prefix}}
	point := func(cc *admissionregistrationv1.WebhookClientConfig, ns **metav1.LabelSelector) error {
		if cc.Service == nil || cc.Service.Path == nil {
			return fmt.Errorf("%s: a webhook without clientConfig.service.path", file)
		}
		u := url + *cc.Service.Path
		*cc = admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: ca}
		if *ns == nil {
			*ns = &metav1.LabelSelector{}
		}
		(*ns).MatchExpressions = append((*ns).MatchExpressions, sel)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		switch doc["kind"] {
		case "MutatingWebhookConfiguration":
			var m admissionregistrationv1.MutatingWebhookConfiguration
			if err := sigsyaml.UnmarshalStrict(raw, &m); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			m.Name = prefix + "-" + m.Name
			for i := range m.Webhooks {
				if err := point(&m.Webhooks[i].ClientConfig, &m.Webhooks[i].NamespaceSelector); err != nil {
					return err
				}
			}
			if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &m, metav1.CreateOptions{}); err != nil {
				return err
			}
		case "ValidatingWebhookConfiguration":
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			if err := sigsyaml.UnmarshalStrict(raw, &v); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			v.Name = prefix + "-" + v.Name
			for i := range v.Webhooks {
				if err := point(&v.Webhooks[i].ClientConfig, &v.Webhooks[i].NamespaceSelector); err != nil {
					return err
				}
			}
			if _, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &v, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
}

// CreateTestNamespace creates namespace ns labelled compatkit.dev/test=prefix (the webhooks
// RegisterWebhooks registered under prefix see it), with its default ServiceAccount.
func (c *Cluster) CreateTestNamespace(ctx context.Context, ns, prefix string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"compatkit.dev/test": prefix}}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	return c.EnsureNamespace(ctx, ns)
}

// ClientCert is a client certificate signed by a fresh CA: what the API server presents to
// webhooks that authenticate it (WebhookClientAuth).
type ClientCert struct {
	CertFile, KeyFile string
	// CAFile is the CA's PEM file (the webhook's --client-ca-file).
	CAFile string
}

// NewClientCert writes a client certificate (CN kube-apiserver), its key and its CA into dir.
func NewClientCert(dir string) (*ClientCert, error) {
	c := &ClientCert{CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key"), CAFile: filepath.Join(dir, "client-ca.crt")}
	if _, err := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, c.CertFile, c.KeyFile, c.CAFile); err != nil {
		return nil, err
	}
	return c, nil
}

// WebhookClientAuth writes an AdmissionConfiguration (apiserver.config.k8s.io/v1) whose
// MutatingAdmissionWebhook and ValidatingAdmissionWebhook present c to every webhook, and returns
// the kube-apiserver flag that loads it (for Options.APIServerArgs).
func WebhookClientAuth(dir string, c *ClientCert) (string, error) {
	kubeconfig := filepath.Join(dir, "webhook-client.kubeconfig")
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nusers:\n- name: '*'\n  user:\n    client-certificate: %s\n    client-key: %s\n", c.CertFile, c.KeyFile)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		return "", err
	}
	admissionConfig := filepath.Join(dir, "admission.yaml")
	ac := "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
	for _, p := range []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"} {
		ac += fmt.Sprintf("- name: %s\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n    kubeConfigFile: %s\n", p, kubeconfig)
	}
	if err := os.WriteFile(admissionConfig, []byte(ac), 0o600); err != nil {
		return "", err
	}
	return "--admission-control-config-file=" + admissionConfig, nil
}
