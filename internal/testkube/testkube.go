// Package testkube runs a real Kubernetes control plane on 127.0.0.1 for tests: etcd,
// kube-apiserver and, optionally, kube-scheduler, each a child process of the test binary with its
// data and logs in a temporary directory. No controller manager and no kubelet run: helpers stand in
// for them where tests need it (EnsureNamespace creates the "default" ServiceAccount,
// CreateReadyNodes makes schedulable Nodes, WaitScheduled waits for the scheduler's bindings).
//
// The binaries come from the environment or from the cache scripts/kube-tools.sh fills:
//
//	COMPATKIT_KUBE_APISERVER  kube-apiserver, else $COMPATKIT_PEERS/kube-v1.34.2/kube-apiserver
//	COMPATKIT_KUBE_SCHEDULER  kube-scheduler, else $COMPATKIT_PEERS/kube-v1.34.2/kube-scheduler
//	COMPATKIT_ETCD            etcd, else etcd on PATH, else /usr/bin/etcd
//
// where COMPATKIT_PEERS defaults to ~/.cache/compatkit-peers. When one is missing Start skips the
// test (naming scripts/kube-tools.sh), unless COMPATKIT_REQUIRE_KUBE=1, when it fails it.
package testkube

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeVersion is the Kubernetes release whose kube-apiserver and kube-scheduler
// scripts/kube-tools.sh builds and Start looks for in the cache.
const KubeVersion = "v1.34.2"

// AdminUser is the token user of Cluster.Config and Cluster.Kubeconfig; it is in the
// system:masters group, so RBAC allows it everything.
const AdminUser = "testkube-admin"

// TokenUsers are the users besides AdminUser that tokens.csv (the apiserver's --token-auth-file)
// lists, each with its own bearer token and no groups (the apiserver adds system:authenticated).
// UserConfig authenticates as them with their tokens.
var TokenUsers = []string{"alice", "bob", "webhook"}

// Timeouts of Start: the apiserver's /readyz (about 15 s on 2 cores) and etcd's and the
// scheduler's health endpoints must answer within these.
const (
	apiserverTimeout = 120 * time.Second
	etcdTimeout      = 30 * time.Second
	schedulerTimeout = 60 * time.Second
	logTailLines     = 60
	startAttempts    = 3 // a free port taken by someone else between probe and bind: retry
)

// Options selects what Start runs besides etcd and kube-apiserver.
type Options struct {
	// Scheduler also starts kube-scheduler (--leader-elect=false), authenticated as AdminUser, so
	// that pods get bound to nodes (see CreateReadyNodes and WaitScheduled).
	Scheduler bool
	// APIServerArgs are extra kube-apiserver flags ("--name=value"), given after Start's own, so a
	// flag here overrides Start's value of the same single-valued flag.
	APIServerArgs []string
}

// Cluster is a running control plane started by Start. It is stopped in the test's cleanup.
type Cluster struct {
	// Config is the admin's client configuration: https://127.0.0.1:PORT with the bearer token
	// of AdminUser (group system:masters), verifying the apiserver's certificate against the CA
	// the apiserver generated in its --cert-dir, QPS 1000 and Burst 2000.
	Config *rest.Config
	// Client is a clientset made from Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file (in Dir) for the same admin user and server,
	// for the --kubeconfig flag of commands under test.
	Kubeconfig string
	// Dir is the cluster's working directory (under t.TempDir, removed after the test): etcd's
	// data, the apiserver's certificates, tokens.csv, the service-account key and the components'
	// logs (etcd.log, kube-apiserver.log, kube-scheduler.log).
	Dir string

	tokens map[string]tokenUser // user name -> token entry of tokens.csv
	procs  []*proc              // in start order
}

type tokenUser struct {
	token  string
	groups []string
}

type binaries struct{ apiserver, scheduler, etcd string }

// Start runs etcd (client and peer on free ports of 127.0.0.1, data in Dir), kube-apiserver
// (secure port on 127.0.0.1, RBAC, token authentication from tokens.csv, a generated RSA
// service-account key) and, with opts.Scheduler, kube-scheduler; it waits for the apiserver's
// /readyz (about 15 s) and the scheduler's /readyz, and creates the "default" ServiceAccount of
// namespace "default". Every process is stopped (its process group signalled, SIGTERM then
// SIGKILL) in t.Cleanup; if the test failed, the last 60 lines of each component's log are
// printed with t.Log first. Start skips or fails the test when a binary is missing (see the
// package comment) and fails it when the control plane does not come up.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bins := findBinaries(t, opts.Scheduler)
	begin := time.Now()
	c := &Cluster{Dir: t.TempDir()}
	t.Cleanup(func() { c.stop(t) })
	if err := c.start(t, bins, opts); err != nil {
		t.Fatalf("testkube: %v", err)
	}
	t.Logf("testkube: control plane (scheduler %v) ready in %v at %s, dir %s",
		opts.Scheduler, time.Since(begin).Round(time.Millisecond), c.Config.Host, c.Dir)
	return c
}

func (c *Cluster) start(t testing.TB, bins binaries, opts Options) error {
	ctx := t.Context()
	if err := c.writeTokens(); err != nil {
		return err
	}
	saKey := filepath.Join(c.Dir, "service-account.key")
	if err := writeRSAKey(saKey); err != nil {
		return err
	}

	etcdURL, err := c.startEtcd(ctx, bins.etcd)
	if err != nil {
		return err
	}
	if err := c.startAPIServer(ctx, bins.apiserver, etcdURL, saKey, opts.APIServerArgs); err != nil {
		return err
	}
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Config); err != nil {
		return err
	}
	nsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.EnsureNamespace(nsCtx, "default"); err != nil {
		return err
	}
	if opts.Scheduler {
		if err := c.startScheduler(ctx, bins.scheduler); err != nil {
			return err
		}
	}
	return nil
}

// findBinaries resolves the three binaries, skipping (or, with COMPATKIT_REQUIRE_KUBE=1,
// failing) the test when one is missing.
func findBinaries(t testing.TB, scheduler bool) binaries {
	t.Helper()
	peers := os.Getenv("COMPATKIT_PEERS")
	if peers == "" {
		if home, err := os.UserHomeDir(); err == nil {
			peers = filepath.Join(home, ".cache", "compatkit-peers")
		}
	}
	kubeDir := filepath.Join(peers, "kube-"+KubeVersion)
	var missing []string
	find := func(env, def string) string {
		p := os.Getenv(env)
		if p == "" {
			p = def
		}
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("%s (%s)", p, env))
			return ""
		}
		return p
	}
	etcdDefault := "/usr/bin/etcd"
	if p, err := exec.LookPath("etcd"); err == nil {
		etcdDefault = p
	}
	b := binaries{
		apiserver: find("COMPATKIT_KUBE_APISERVER", filepath.Join(kubeDir, "kube-apiserver")),
		etcd:      find("COMPATKIT_ETCD", etcdDefault),
	}
	if scheduler {
		b.scheduler = find("COMPATKIT_KUBE_SCHEDULER", filepath.Join(kubeDir, "kube-scheduler"))
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("testkube: missing %s: run scripts/kube-tools.sh (builds kube-apiserver and "+
			"kube-scheduler %s, installs etcd-server) and eval its export line", strings.Join(missing, ", "), KubeVersion)
		if os.Getenv("COMPATKIT_REQUIRE_KUBE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return b
}

// writeTokens writes tokens.csv (token,user,uid[,"groups"]) with a random token per user.
func (c *Cluster) writeTokens() error {
	c.tokens = map[string]tokenUser{AdminUser: {token: randomToken(), groups: []string{"system:masters"}}}
	for _, u := range TokenUsers {
		c.tokens[u] = tokenUser{token: randomToken()}
	}
	var b strings.Builder
	names := make([]string, 0, len(c.tokens))
	for u := range c.tokens {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, u := range names {
		tu := c.tokens[u]
		fmt.Fprintf(&b, "%s,%s,uid-%s", tu.token, u, u)
		if len(tu.groups) > 0 {
			fmt.Fprintf(&b, ",%q", strings.Join(tu.groups, ","))
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(filepath.Join(c.Dir, "tokens.csv"), []byte(b.String()), 0o600)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return os.WriteFile(path, pemBytes, 0o600)
}

// freePorts returns n distinct free TCP ports of 127.0.0.1; the listeners are closed before it
// returns, so another process may take one first (the start functions retry).
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startEtcd starts etcd and waits for its /health; it returns the client URL.
func (c *Cluster) startEtcd(ctx context.Context, bin string) (string, error) {
	var lastErr error
	for attempt := range startAttempts {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		dataDir := filepath.Join(c.Dir, "etcd-data")
		if attempt > 0 {
			dataDir += strconv.Itoa(attempt)
		}
		p, err := c.run("etcd", bin,
			"--name=testkube",
			"--data-dir="+dataDir,
			"--listen-client-urls="+clientURL,
			"--advertise-client-urls="+clientURL,
			"--listen-peer-urls="+peerURL,
			"--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=testkube="+peerURL,
			"--initial-cluster-state=new",
			"--logger=zap",
			"--log-outputs=stderr",
		)
		if err != nil {
			return "", err
		}
		err = waitHTTP(ctx, p, etcdTimeout, http.DefaultClient, clientURL+"/health", nil)
		if err == nil {
			return clientURL, nil
		}
		lastErr = err
		if !p.exited() {
			return "", err
		}
	}
	return "", lastErr
}

// startAPIServer starts kube-apiserver, waits for /readyz and sets c.Config.
func (c *Cluster) startAPIServer(ctx context.Context, bin, etcdURL, saKey string, extra []string) error {
	var lastErr error
	for attempt := range startAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		certDir := filepath.Join(c.Dir, "apiserver-certs")
		if attempt > 0 {
			certDir += strconv.Itoa(attempt)
		}
		args := []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + certDir,
			"--token-auth-file=" + filepath.Join(c.Dir, "tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-key-file=" + saKey,
			"--service-account-signing-key-file=" + saKey,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range=10.96.0.0/16",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		}
		p, err := c.run("kube-apiserver", bin, append(args, extra...)...)
		if err != nil {
			return err
		}
		host := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		caFile := filepath.Join(certDir, "apiserver.crt")
		// The certificate appears in --cert-dir shortly after start; poll /readyz with it.
		var hc *http.Client
		var caData []byte
		client := func() *http.Client {
			if hc != nil {
				return hc
			}
			data, err := os.ReadFile(caFile)
			if err != nil || !bytes.Contains(data, []byte("END CERTIFICATE")) {
				return nil
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(data) {
				return nil
			}
			caData = data
			hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool}}}
			return hc
		}
		auth := http.Header{"Authorization": {"Bearer " + c.tokens[AdminUser].token}}
		err = waitHTTPWith(ctx, p, apiserverTimeout, client, host+"/readyz", auth)
		if hc != nil {
			hc.CloseIdleConnections()
		}
		if err == nil {
			c.Config = &rest.Config{
				Host:            host,
				BearerToken:     c.tokens[AdminUser].token,
				TLSClientConfig: rest.TLSClientConfig{CAData: caData},
				QPS:             1000,
				Burst:           2000,
			}
			return nil
		}
		lastErr = err
		// Retry only when the port was taken in between.
		if !p.exited() || !p.logContains("address already in use") {
			return err
		}
	}
	return lastErr
}

// startScheduler starts kube-scheduler with the admin kubeconfig and waits for its /readyz.
func (c *Cluster) startScheduler(ctx context.Context, bin string) error {
	var lastErr error
	for range startAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		p, err := c.run("kube-scheduler", bin,
			"--kubeconfig="+c.Kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(ports[0]),
			"--cert-dir="+filepath.Join(c.Dir, "scheduler-certs"),
			"--profiling=false",
		)
		if err != nil {
			return err
		}
		insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // its own self-signed certificate
		err = waitHTTP(ctx, p, schedulerTimeout, insecure, fmt.Sprintf("https://127.0.0.1:%d/readyz", ports[0]), nil)
		insecure.CloseIdleConnections()
		if err == nil {
			return nil
		}
		lastErr = err
		if !p.exited() || !p.logContains("address already in use") {
			return err
		}
	}
	return lastErr
}

func waitHTTP(ctx context.Context, p *proc, timeout time.Duration, hc *http.Client, url string, h http.Header) error {
	return waitHTTPWith(ctx, p, timeout, func() *http.Client { return hc }, url, h)
}

// waitHTTPWith polls url (GET, every 100 ms) until it answers 200, the process exits or timeout
// passes; client returns nil while no client can be made yet.
func waitHTTPWith(ctx context.Context, p *proc, timeout time.Duration, client func() *http.Client, url string, h http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "no answer"
	for {
		if hc := client(); hc != nil {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := hc.Do(req)
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = fmt.Sprintf("%s: %s", resp.Status, lastLines(string(body), 5))
			} else {
				last = err.Error()
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before %s answered; log %s", p.name, p.err, url, p.log)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready within %v: last %s; log %s", p.name, url, timeout, last, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeKubeconfig writes a kubeconfig for cfg's server, CA and bearer token.
func writeKubeconfig(path string, cfg *rest.Config) error {
	const tmpl = `apiVersion: v1
kind: Config
clusters:
- name: testkube
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: testkube
  context:
    cluster: testkube
    user: %s
    namespace: default
current-context: testkube
`
	s := fmt.Sprintf(tmpl, cfg.Host, base64.StdEncoding.EncodeToString(cfg.TLSClientConfig.CAData),
		AdminUser, cfg.BearerToken, AdminUser)
	return os.WriteFile(path, []byte(s), 0o600)
}

// UserConfig returns a copy of Config that authenticates as user with groups (the apiserver adds
// system:authenticated). For the users of tokens.csv (AdminUser with group system:masters, and
// TokenUsers with no groups) given with exactly their groups, it uses that user's bearer token;
// for any other user or groups it uses the admin's token with impersonation (Impersonate-User,
// Impersonate-Group), which RBAC and admission see as that user the same way.
func (c *Cluster) UserConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	if tu, ok := c.tokens[user]; ok && sameSet(tu.groups, groups) {
		cfg.BearerToken = tu.token
		return cfg
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: slices.Clone(groups)}
	return cfg
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// stop logs the components' log tails when the test failed, then stops the processes, the last
// started first.
func (c *Cluster) stop(t testing.TB) {
	if t.Failed() {
		for _, p := range c.procs {
			t.Logf("testkube: last %d lines of %s (%s):\n%s", logTailLines, p.name, p.log, p.tail(logTailLines))
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
}

// proc is a child process whose stdout and stderr go to a log file in Dir.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	err       error         // cmd.Wait's result, set before done is closed
}

// run starts bin in its own process group with output to Dir/<name>.log (appended across
// retries) and adds it to c.procs.
func (c *Cluster) run(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "# testkube: %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = f, f
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s, and waits for the exit.
func (p *proc) stop() {
	if !p.exited() {
		signalGroup(p.cmd, false)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	signalGroup(p.cmd, true) // also whatever the process left in its group
	<-p.done
}

// tail returns the last n lines of the log (read from its last 256 KiB).
func (p *proc) tail(n int) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const max = 256 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func (p *proc) logContains(s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && bytes.Contains(b, []byte(s))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
