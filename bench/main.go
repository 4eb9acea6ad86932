// Command bench measures compat-attach against its peers (NFD's `nfd compat validate-node`, `oras
// attach`) at a registry's real distance: every request goes through a proxy that adds -delay
// (30 ms, as a registry in another region) in front of a docker-registry. It prints, from one run,
// the median wall time, the registry requests and the peak memory of each command, and the ratio
// to the peer beside issue 10's target.
//
// Run it with bench/run.sh, which builds the peers and the example image and starts the registry;
// by hand:
//
//	go run ./bench -registry 127.0.0.1:5000 -compat-attach ./compat-attach -nfd nfd -oras oras \
//	    -layout examples/hello/build/oci4 -spec-dir /tmp/spec -work /tmp/bench
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/compatkit/compatkit/internal/testregistry"
)

type config struct {
	registry     string        // the registry itself (setup goes there directly)
	delay        time.Duration // added to every request through the proxy
	runs         int           // runs of each short command; the median is printed
	images       int           // images attached to by attach (each side)
	compatAttach string
	nfd          string
	oras         string
	layout       string // OCI layout of the 4-platform example image, tag 1.0
	specDir      string // the example's spec with its fourth platform
	work         string // scratch directory
}

func main() {
	var c config
	flag.StringVar(&c.registry, "registry", "", "`host:port` of the registry (plain HTTP)")
	flag.DurationVar(&c.delay, "delay", 30*time.Millisecond, "latency the proxy adds to every request")
	flag.IntVar(&c.runs, "runs", 5, "runs of check and select (the median is printed)")
	flag.IntVar(&c.images, "images", 100, "images attach is measured on")
	flag.StringVar(&c.compatAttach, "compat-attach", "compat-attach", "compat-attach binary")
	flag.StringVar(&c.nfd, "nfd", "nfd", "nfd binary")
	flag.StringVar(&c.oras, "oras", "oras", "oras binary")
	flag.StringVar(&c.layout, "layout", "", "OCI layout `dir` of the 4-platform example image (tag 1.0)")
	flag.StringVar(&c.specDir, "spec-dir", "", "`dir` of the .cue files of the example's spec")
	flag.StringVar(&c.work, "work", "", "scratch `dir`")
	flag.Parse()
	if c.registry == "" || c.layout == "" || c.specDir == "" || c.work == "" {
		fmt.Fprintln(os.Stderr, "bench: -registry, -layout, -spec-dir and -work are required (bench/run.sh gives them)")
		os.Exit(2)
	}
	if err := run(context.Background(), &c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// proxy forwards to the registry after a delay and counts requests.
type proxy struct {
	addr  string
	count atomic.Int64
}

func startProxy(target string, delay time.Duration) (*proxy, error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the client's Host: upload Locations point back here
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	p := &proxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.addr = ln.Addr().String()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	}))
	return p, nil
}

// measurement is one command's figures.
type measurement struct {
	name     string
	seconds  float64 // median wall time
	requests int64   // registry requests of one run (the median run's)
	rssMB    float64 // peak resident memory of the largest process
}

// step is one process to run: argv and extra environment.
type step struct {
	argv []string
	env  []string
	ok   []int // accepted exit codes besides 0
}

// measure runs steps (in sequence, as one "command") runs times, after prepare (when not nil)
// before each run, and returns the median.
func (c *config) measure(p *proxy, name string, runs int, prepare func(run int) error, steps func(run int) []step) (measurement, error) {
	type sample struct {
		sec  float64
		reqs int64
		rss  int64
	}
	var samples []sample
	for run := range runs {
		if prepare != nil {
			if err := prepare(run); err != nil {
				return measurement{}, err
			}
		}
		before := p.count.Load()
		start := time.Now()
		var rss int64
		for _, s := range steps(run) {
			r, err := runStep(s)
			if err != nil {
				return measurement{}, fmt.Errorf("%s: %w", name, err)
			}
			rss = max(rss, r)
		}
		samples = append(samples, sample{time.Since(start).Seconds(), p.count.Load() - before, rss})
	}
	slices.SortFunc(samples, func(a, b sample) int {
		switch {
		case a.sec < b.sec:
			return -1
		case a.sec > b.sec:
			return 1
		}
		return 0
	})
	m := samples[len(samples)/2]
	var rss int64
	for _, s := range samples {
		rss = max(rss, s.rss)
	}
	return measurement{name: name, seconds: m.sec, requests: m.reqs, rssMB: float64(rss) / 1024}, nil
}

// runStep runs one process and returns its peak RSS in KiB.
func runStep(s step) (int64, error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && slices.Contains(s.ok, ee.ExitCode()) {
		err = nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(s.argv, " "), err, stderr.String())
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

func run(ctx context.Context, c *config) error {
	p, err := startProxy(c.registry, c.delay)
	if err != nil {
		return err
	}
	at := p.addr // every measured command talks to the registry through the proxy
	ca := func(args ...string) []string { return append([]string{c.compatAttach}, args...) }
	specs := []string{"--spec", filepath.Join(c.specDir, "compat.cue"), "--spec", filepath.Join(c.specDir, "v2.cue")}

	// Set-up, straight to the registry: the 4-platform example with its specs, and 2 x -images
	// single-manifest images.
	fmt.Fprintf(os.Stderr, "setting up %s: the example image and %d images to attach to\n", c.registry, 2*c.images)
	if _, err := runStep(step{argv: []string{c.oras, "cp", "--from-oci-layout", c.layout + ":1.0", "--to-plain-http", c.registry + "/hello:bench"}}); err != nil {
		return err
	}
	if _, err := runStep(step{argv: ca(append([]string{"attach", "--plain-http", "--no-cache", c.registry + "/hello:bench"}, specs...)...)}); err != nil {
		return err
	}
	for i := range 2 * c.images {
		if err := pushApp(ctx, c.registry, i); err != nil {
			return err
		}
	}
	// oras attaches what export writes: the same spec, as YAML.
	specYAML := filepath.Join(c.work, "spec.yaml")
	out, err := exec.Command(c.compatAttach, "export", filepath.Join(c.specDir, "compat.cue"), filepath.Join(c.specDir, "v2.cue"), "--platform", "linux/amd64/v3").Output()
	if err == nil {
		err = os.WriteFile(specYAML, out, 0o644)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}

	image := at + "/hello:bench"
	platforms := []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/arm64/v8"}
	cacheDir := func(name string) string { return filepath.Join(c.work, "cache-"+name) }
	cold := func(name string) func(int) error {
		return func(run int) error { return os.RemoveAll(cacheDir(name)) }
	}
	xdg := func(name string) []string { return []string{"XDG_CACHE_HOME=" + cacheDir(name)} }
	nfdCheck := func(platform string) step {
		return step{argv: []string{c.nfd, "compat", "validate-node", "--plain-http", "--image", image, "--platform", platform}, ok: []int{1}}
	}
	var results []measurement
	add := func(m measurement, err error) error {
		if err == nil {
			results = append(results, m)
			fmt.Fprintf(os.Stderr, "  %-40s %6.3f s %4d requests %6.1f MB\n", m.name, m.seconds, m.requests, m.rssMB)
		}
		return err
	}

	fmt.Fprintln(os.Stderr, "measuring (through a proxy adding", c.delay, "per request):")
	checkArgs := ca("check", "--plain-http", image, "--platform", "linux/amd64/v3")
	if err := add(c.measure(p, "check (cold cache)", c.runs, cold("check"), func(int) []step {
		return []step{{argv: checkArgs, env: xdg("check"), ok: []int{3}}}
	})); err != nil {
		return err
	}
	if err := add(c.measure(p, "check (warm cache)", c.runs, nil, func(int) []step {
		return []step{{argv: checkArgs, env: xdg("check"), ok: []int{3}}}
	})); err != nil {
		return err
	}
	if err := add(c.measure(p, "nfd compat validate-node", c.runs, nil, func(int) []step {
		return []step{nfdCheck("linux/amd64/v3")}
	})); err != nil {
		return err
	}
	selectArgs := ca("select", "--plain-http", image)
	if err := add(c.measure(p, "select, 4 platforms (cold cache)", c.runs, cold("select"), func(int) []step {
		return []step{{argv: selectArgs, env: xdg("select"), ok: []int{3}}}
	})); err != nil {
		return err
	}
	if err := add(c.measure(p, "select, 4 platforms (warm cache)", c.runs, nil, func(int) []step {
		return []step{{argv: selectArgs, env: xdg("select"), ok: []int{3}}}
	})); err != nil {
		return err
	}
	if err := add(c.measure(p, "4 x nfd compat validate-node", c.runs, nil, func(int) []step {
		var s []step
		for _, pl := range platforms {
			s = append(s, nfdCheck(pl))
		}
		return s
	})); err != nil {
		return err
	}
	attachArgs := ca(append([]string{"attach", "--plain-http", "--platform", "linux/amd64/v3"}, specs...)...)
	for i := range c.images {
		attachArgs = append(attachArgs, fmt.Sprintf("%s/apps/app-%03d:1.0", at, i))
	}
	if err := add(c.measure(p, fmt.Sprintf("attach to %d images", c.images), 1, cold("attach"), func(int) []step {
		return []step{{argv: attachArgs, env: xdg("attach")}}
	})); err != nil {
		return err
	}
	if err := add(c.measure(p, fmt.Sprintf("%d x oras attach", c.images), 1, nil, func(int) []step {
		var s []step
		for i := range c.images {
			s = append(s, step{argv: []string{c.oras, "attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/vnd.nfd.image-compatibility.v1alpha1",
				fmt.Sprintf("%s/apps/app-%03d:1.0", at, c.images+i), specYAML + ":application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"}})
		}
		return s
	})); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		argv []string
	}{{"compat-attach --version", ca("--version")}, {"nfd --help", []string{c.nfd, "--help"}}, {"oras version", []string{c.oras, "version"}}} {
		if err := add(c.measure(p, s.name, max(c.runs, 11), nil, func(int) []step { return []step{{argv: s.argv}} })); err != nil {
			return err
		}
	}

	byName := map[string]measurement{}
	for _, m := range results {
		byName[m.name] = m
	}
	fmt.Printf("\ncompat-attach against its peers, through a proxy adding %v to every request (docker-registry behind it), median of %d runs:\n\n", c.delay, c.runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\ttime (s)\trequests\tpeak RSS (MB)\tratio to peer\ttarget\t")
	for _, r := range []struct{ name, peer, target string }{
		{"check (cold cache)", "nfd compat validate-node", "0.6x"},
		{"check (warm cache)", "nfd compat validate-node", "0.3x"},
		{"nfd compat validate-node", "", ""},
		{"select, 4 platforms (cold cache)", "4 x nfd compat validate-node", "0.3x"},
		{"select, 4 platforms (warm cache)", "4 x nfd compat validate-node", "0.3x"},
		{"4 x nfd compat validate-node", "", ""},
		{fmt.Sprintf("attach to %d images", c.images), fmt.Sprintf("%d x oras attach", c.images), "0.5x"},
		{fmt.Sprintf("%d x oras attach", c.images), "", ""},
		{"compat-attach --version", "nfd --help", "1x"},
		{"nfd --help", "", ""},
		{"oras version", "", ""},
	} {
		m := byName[r.name]
		ratio := ""
		if r.peer != "" {
			ratio = fmt.Sprintf("%.2fx", m.seconds/byName[r.peer].seconds)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%d\t%.1f\t%s\t%s\t\n", r.name, m.seconds, m.requests, m.rssMB, ratio, r.target)
	}
	return tw.Flush()
}

// pushApp pushes apps/app-NNN:1.0, a distinct single-manifest linux/amd64/v3 image.
func pushApp(ctx context.Context, registry string, i int) error {
	src, _, err := testregistry.Build(ctx, "1.0", testregistry.Shape{
		Single: true, Salt: fmt.Sprint(i),
		Platforms: testregistry.Platforms[1:2],
	})
	if err != nil {
		return err
	}
	repo, err := remote.NewRepository(fmt.Sprintf("%s/apps/app-%03d", registry, i))
	if err != nil {
		return err
	}
	repo.PlainHTTP = true
	_, err = oras.Copy(ctx, src, "1.0", repo, "1.0", oras.DefaultCopyOptions)
	return err
}
