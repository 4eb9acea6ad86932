package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/compatkit/compatkit/pkg/admission"
	"github.com/compatkit/compatkit/pkg/oci"
)

type webhookOptions struct {
	policy        policyOptions
	listen        string
	metricsListen string
	certFile      string
	keyFile       string
	kubeconfig    string
	kubeContext   string
	allow         []string
	plainHTTP     []string
	pinDigests    bool
	failOpen      bool
	budget        time.Duration
	tagTTL        time.Duration
	specTTL       time.Duration
	cacheDir      string
	clientCA      string
}

func webhookCmd() *cobra.Command {
	var opts webhookOptions
	cmd := &cobra.Command{
		Use:   "webhook --tls-cert-file F --tls-key-file F --allow-registry R...",
		Short: "Serve a Kubernetes admission webhook that keeps pods off nodes that cannot run their images",
		Long: `Serve Kubernetes admission webhooks over HTTPS (admission.k8s.io/v1; pkg/admission):

  POST /mutate    Pods, and the pod templates of Deployments, StatefulSets, DaemonSets, Jobs and
                  CronJobs: adds the required node affinity the images' specs need (as
                  'compat-attach affinity' prints it, on NFD's labels), ANDed with the pod's own
                  (never loosened), preferred terms from the sets' weights, and the annotation
                  compatkit.dev/admission (digests, spec referrers, verification). A template
                  update that keeps its images and affinity is left alone. --pin-digests also
                  pins each pod's image tags to the digests that were checked.
  POST /validate  rejects a pod bound to a node its image cannot run on (spec.nodeName, a
                  kubernetes.io/hostname selector, a DaemonSet pod, the scheduler's pods/binding
                  and bindings, a running pod whose images change), naming the image, the node
                  and the failing rule; with --require-trusted, an image without a trusted spec.
  GET /healthz, /readyz (ready once the nodes are listed); metrics on --metrics-listen (/metrics).

Nodes are watched (list and watch nodes, and NFD's nodefeatures when served: they carry every
flag, where labels omit some) and grouped into feature sets: each image digest is decided once
per set. Images are read only from --allow-registry registries, with the pod's imagePullSecrets
and its service account's (get secrets and serviceaccounts). A tag's digest is reused for
--tag-ttl, an image's specs for --spec-ttl. Each request has --budget; what cannot be read within
it (registry down, unreadable spec) rejects the pod, or with --fail-open admits it with a warning.
The certificate and key are reloaded when their files change (cert-manager); --client-ca-file
accepts only the API server's client certificate (see deploy/README.md: without it, anyone who
reaches the webhook can ask what another namespace's pull secrets read). deploy/ has the
manifests; the README says how to deploy, SECURITY.md what the webhook guarantees.`,
		Example: `  # In a cluster (deploy/webhook.yaml runs this):
  compat-attach webhook --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key \
    --allow-registry ghcr.io/acme/ --allow-registry registry.internal:5000 --pin-digests

  # Signed specs only, from one key; pods with an unsigned image are rejected:
  compat-attach webhook --tls-cert-file tls.crt --tls-key-file tls.key --allow-registry '*' \
    --key cosign.pub --require-trusted

  # Outside the cluster, against a kubeconfig (tests, a development cluster):
  compat-attach webhook --kubeconfig ~/.kube/config --listen 127.0.0.1:8443 ...`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if opts.certFile == "" || opts.keyFile == "" {
				return usagef("--tls-cert-file and --tls-key-file are required: the API server calls webhooks over HTTPS")
			}
			if len(opts.allow) == 0 {
				return usagef("--allow-registry is required: the registries the webhook may contact (host, *.domain, host/repository-prefix/, or '*' for any)")
			}
			return opts.policy.validate()
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runWebhook(cmd, &opts) },
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.listen, "listen", ":8443", "address of the HTTPS webhook server")
	fs.StringVar(&opts.metricsListen, "metrics-listen", ":9090", "address of the Prometheus /metrics server (HTTP); empty: none")
	fs.StringVar(&opts.certFile, "tls-cert-file", "", "TLS certificate (PEM), reloaded when it changes")
	fs.StringVar(&opts.keyFile, "tls-key-file", "", "TLS private key (PEM), reloaded when it changes")
	fs.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the pod's service account)")
	fs.StringVar(&opts.kubeContext, "context", "", "kubeconfig context")
	fs.StringArrayVar(&opts.allow, "allow-registry", nil, "a registry the webhook may read images from: host[:port], *.domain, host/repository-prefix/ or '*'; repeatable")
	fs.StringArrayVar(&opts.plainHTTP, "plain-http-registry", nil, "a registry (host[:port]) spoken to over HTTP; repeatable")
	fs.BoolVar(&opts.pinDigests, "pin-digests", false, "replace each image tag of a pod by tag@digest, the digest that was checked (templates are left as they are)")
	fs.BoolVar(&opts.failOpen, "fail-open", false, "admit, with a warning, a pod whose images cannot be read within --budget (default: reject it)")
	fs.DurationVar(&opts.budget, "budget", 5*time.Second, "time to answer one admission request (under the configuration's timeoutSeconds)")
	fs.DurationVar(&opts.tagTTL, "tag-ttl", 30*time.Second, "how long a tag's digest is reused")
	fs.DurationVar(&opts.specTTL, "spec-ttl", 5*time.Minute, "how long an image's tree and specs are reused before its referrers are listed again")
	fs.StringVar(&opts.cacheDir, "cache-dir", "", "on-disk cache of immutable registry content (default: none)")
	fs.StringVar(&opts.clientCA, "client-ca-file", "", "accept only clients with a certificate signed by this CA (PEM): the API server's, from its admission configuration (deploy/README.md); default: any client")
	opts.policy.bind(fs)
	opts.policy.bindRequireTrusted(fs)
	return cmd
}

// kubeRESTConfig loads a client configuration with clientcmd's rules: file when given, else
// $KUBECONFIG or ~/.kube/config, else the service account of the pod it runs in; context when
// given, else the current one.
func kubeRESTConfig(file, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = file
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, withNext(fmt.Errorf("--kubeconfig: no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a pod"), "give the kubeconfig file: --kubeconfig FILE")
	case err != nil:
		return nil, withNext(fmt.Errorf("--kubeconfig: %w", err), "check the kubeconfig file and --context (kubectl config get-contexts)")
	}
	cfg.UserAgent = "compat-attach"
	return cfg, nil
}

func runWebhook(cmd *cobra.Command, opts *webhookOptions) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	trust, err := opts.policy.trust(ctx, &targetOptions{})
	if err != nil {
		return err
	}
	rc, err := kubeRESTConfig(opts.kubeconfig, opts.kubeContext)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 50, 100
	certs, err := admission.NewCertReloader(opts.certFile, opts.keyFile)
	if err != nil {
		return withNext(err, "give the PEM files of the webhook's serving certificate (deploy/README: cert-manager or scripts)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	wopts := admission.Options{
		Trust: trust, RequireTrusted: opts.policy.requireTrusted,
		AllowRegistries: opts.allow, PlainHTTP: opts.plainHTTP, PinDigests: opts.pinDigests,
		FailOpen: opts.failOpen, Budget: opts.budget, TagTTL: opts.tagTTL, SpecTTL: opts.specTTL,
		Kube: rc, Registerer: reg,
	}
	if opts.cacheDir != "" {
		wopts.Cache = &oci.Cache{Dir: opts.cacheDir}
	}
	nodes := admission.NewNodes()
	wh, err := admission.New(wopts, nodes)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if opts.clientCA != "" {
		// Only the API server may call: it presents the client certificate of its admission
		// configuration (deploy/README.md), signed by this CA.
		pem, err := os.ReadFile(opts.clientCA)
		if err != nil {
			return fmt.Errorf("--client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return withNext(fmt.Errorf("--client-ca-file %s: no PEM certificate in it", opts.clientCA), "give the CA that signed the API server's client certificate for webhooks")
		}
		tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", opts.listen, err)
	}
	// Serving starts at once (/healthz answers, /readyz fails until the nodes are listed), so that
	// a liveness probe does not kill the webhook while a large cluster's nodes are listed.
	srv := &http.Server{Handler: wh.Handler(), TLSConfig: tlsConfig,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 3)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	cmd.PrintErrf("watching nodes on %s\n", rc.Host)
	go func() {
		if err := admission.WatchNodes(ctx, rc, nodes); err != nil {
			errc <- err
			return
		}
		n, sets := nodes.Counts()
		cmd.PrintErrf("%d nodes in %d feature sets: ready\n", n, sets)
	}()
	var msrv *http.Server
	if opts.metricsListen != "" {
		mln, err := net.Listen("tcp", opts.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", opts.metricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
		cmd.PrintErrf("metrics on http://%s/metrics\n", mln.Addr())
	}
	cmd.PrintErrf("serving admission webhooks on https://%s (/mutate, /validate)\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	if msrv != nil {
		_ = msrv.Shutdown(sctx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
