// Package actions_test runs the repository's GitHub Actions (action.yml, actions/check) as a
// runner would, against local registries: every "run" step of the composite action, in order,
// with its env: evaluated from the inputs, and GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH,
// GITHUB_ACTION_PATH and RUNNER_TEMP pointed at temporary files. "uses" steps (actions/setup-go)
// are skipped: Go is here. Keyless signing goes through the local Fulcio and OIDC token
// stand-ins of internal/testsigstore.
package actions_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/compatkit/compatkit/internal/testregistry"
	"github.com/compatkit/compatkit/internal/testsigstore"
)

// action is the part of action.yml the runner reads.
type action struct {
	Inputs map[string]struct {
		Required bool   `yaml:"required"`
		Default  string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Uses  string            `yaml:"uses"`
			Run   string            `yaml:"run"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

// run is one run of an action.
type run struct {
	outputs map[string]string
	summary string
	log     string
	err     error
}

// runner runs actions as GitHub's runner does, sharing a tool cache and PATH additions.
type runner struct {
	t         *testing.T
	toolCache string
	path      []string // GITHUB_PATH additions, newest first
	env       []string
}

var expr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// run runs the composite action in dir (holding action.yml) with inputs.
func (r *runner) run(dir string, inputs map[string]string) run {
	t := r.t
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatalf("%s/action.yml: %v", dir, err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("%s: runs.using %q", dir, a.Runs.Using)
	}
	for name := range inputs {
		if _, ok := a.Inputs[name]; !ok {
			t.Fatalf("%s has no input %q", dir, name)
		}
	}
	input := func(name string) string {
		if v, ok := inputs[name]; ok {
			return v
		}
		in, ok := a.Inputs[name]
		if !ok {
			t.Fatalf("%s: unknown input %q", dir, name)
		}
		if in.Required {
			t.Fatalf("%s: required input %q not given", dir, name)
		}
		return in.Default
	}
	tmp := t.TempDir()
	summary := filepath.Join(tmp, "summary.md")
	pathFile := filepath.Join(tmp, "path")
	steps := map[string]map[string]string{}
	eval := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			e := strings.TrimSpace(expr.FindStringSubmatch(m)[1])
			switch {
			case strings.HasPrefix(e, "inputs."):
				return input(strings.TrimPrefix(e, "inputs."))
			case e == "github.action_path":
				return dir
			case strings.HasPrefix(e, "steps."):
				parts := strings.Split(e, ".") // steps.ID.outputs.NAME
				if len(parts) == 4 && parts[2] == "outputs" {
					return steps[parts[1]][parts[3]]
				}
			}
			t.Fatalf("%s: expression %q is not supported by the test runner", dir, e)
			return ""
		})
	}
	var log strings.Builder
	res := run{}
	for i, st := range a.Runs.Steps {
		if st.Uses != "" {
			continue
		}
		if st.Shell != "bash" {
			t.Fatalf("%s: step %d: shell %q, want bash", dir, i, st.Shell)
		}
		if strings.Contains(st.Run, "${{") {
			t.Fatalf("%s: step %d inlines an expression in its script: pass inputs through env", dir, i)
		}
		out := filepath.Join(tmp, fmt.Sprintf("output-%d", i))
		env := append(os.Environ(), r.env...)
		env = append(env,
			"PATH="+strings.Join(append(append([]string{}, r.path...), os.Getenv("PATH")), string(os.PathListSeparator)),
			"GITHUB_ACTIONS=true", "GITHUB_ACTION_PATH="+dir, "GITHUB_OUTPUT="+out, "GITHUB_STEP_SUMMARY="+summary,
			"GITHUB_PATH="+pathFile, "RUNNER_TEMP="+tmp, "RUNNER_TOOL_CACHE="+r.toolCache)
		for k, v := range st.Env {
			env = append(env, k+"="+eval(v))
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", st.Run)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		log.Write(b)
		if st.ID != "" {
			steps[st.ID] = readOutputs(t, out)
		}
		if p, err := os.ReadFile(pathFile); err == nil {
			r.path = nil
			for _, l := range strings.Split(strings.TrimSpace(string(p)), "\n") {
				r.path = append([]string{l}, r.path...)
			}
		}
		if err != nil {
			res.err = fmt.Errorf("step %d (%s): %w", i, st.ID, err)
			break
		}
	}
	res.outputs = map[string]string{}
	for name, o := range a.Outputs {
		res.outputs[name] = eval(o.Value)
	}
	s, _ := os.ReadFile(summary)
	res.summary, res.log = string(s), log.String()
	return res
}

// readOutputs parses a GITHUB_OUTPUT file: name=value lines and name<<DELIMITER blocks.
func readOutputs(t *testing.T, path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var v []string
			for sc.Scan() && sc.Text() != delim {
				v = append(v, sc.Text())
			}
			out[name] = strings.Join(v, "\n")
			continue
		}
		if name, v, ok := strings.Cut(line, "="); ok {
			out[name] = v
			continue
		}
		t.Errorf("%s: line %q is neither name=value nor name<<DELIMITER", path, line)
	}
	return out
}

// toolCache is the runner's tool cache, shared by every test of the package: the setup step builds
// compat-attach once.
var toolCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "compatkit-toolcache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func root(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func compat(t *testing.T, r *runner, args ...string) (string, int) {
	t.Helper()
	bin := ""
	for _, d := range r.path {
		if _, err := os.Stat(filepath.Join(d, "compat-attach")); err == nil {
			bin = filepath.Join(d, "compat-attach")
			break
		}
	}
	if bin == "" {
		t.Fatal("compat-attach is not on the PATH the setup step gave")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), r.env...), "PATH="+strings.Join(append(append([]string{}, r.path...), os.Getenv("PATH")), string(os.PathListSeparator)))
	b, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(b), code
}

// TestAttachAction: the attach Action on both registries, keyless through the Fulcio stand-in:
// outputs, summary, compiled specs; verify finds every spec signed by the workflow's identity; a
// second run attaches and signs nothing; a key from a secret signs too.
func TestAttachAction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds compat-attach")
	}
	ca := testsigstore.NewCA(t)
	ca.Issuer, ca.SAN = "https://token.actions.githubusercontent.com", "https://github.com/myorg/app/.github/workflows/release.yml@refs/heads/main"
	const sub = "repo:myorg/app:ref:refs/heads/main"
	fulcio := httptest.NewServer(testsigstore.Fulcio(ca, sub, nil))
	defer fulcio.Close()
	testsigstore.GitHubTokenEndpoint(t, testsigstore.Token(ca.Issuer, sub))
	tmp := t.TempDir()
	trustedRoot := filepath.Join(tmp, "trusted_root.json")
	if err := os.WriteFile(trustedRoot, ca.TrustedRootJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(tmp, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  - issuer: %s\n    subject: %s\ntrustedRoot: %s\n", ca.Issuer, ca.SAN, trustedRoot)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, toolCache: toolCache, env: []string{"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache")}}
	spec := filepath.Join(root(t), "examples", "hello", "compat.cue")
	for name, reg := range map[string]*testregistry.Registry{"referrers-api": testregistry.NewOCI(t), "tag-fallback": testregistry.NewDistribution(t)} {
		t.Run(name, func(t *testing.T) {
			r.t = t
			a := testregistry.PushImage(t, reg.Host(), "app", "1.0")
			b := testregistry.PushShape(t, reg.Host(), "worker", "1.0", testregistry.Shape{Platforms: testregistry.Platforms[:2]})
			images := fmt.Sprintf("%s/app@%s\n\n# the worker\n%s/worker@%s\n", reg.Host(), a.Index.Digest, reg.Host(), b.Index.Digest)
			inputs := map[string]string{"spec": spec, "images": images, "sign": "keyless", "fulcio-url": fulcio.URL, "plain-http": "true"}
			res := r.run(root(t), inputs)
			if res.err != nil {
				t.Fatalf("%v\n%s", res.err, res.log)
			}
			referrers := strings.Split(res.outputs["referrers"], "\n")
			bundles := strings.Split(res.outputs["bundles"], "\n")
			if len(referrers) != 5 || len(bundles) != 5 || !strings.Contains(res.outputs["subjects"], b.Manifests[1].Digest.String()) {
				t.Fatalf("outputs %q\n%s", res.outputs, res.log)
			}
			specs, _ := filepath.Glob(filepath.Join(res.outputs["spec-dir"], "*.yaml"))
			if len(specs) != 3 {
				t.Errorf("spec-dir %q holds %v", res.outputs["spec-dir"], specs)
			}
			for _, want := range []string{"### compat-attach: 5 compatibility specs", "x86-64-v3 (weight 90)", "linux/arm64/v8", "attached"} {
				if !strings.Contains(res.summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, res.summary)
				}
			}
			out, code := compat(t, r, "verify", "--plain-http", strings.Split(images, "\n")[0], "--policy", policy)
			if code != 0 || strings.Count(out, "VERIFIED") != 3 || !strings.Contains(out, "myorg/app") {
				t.Fatalf("verify: exit %d\n%s", code, out)
			}

			// Nightly again: nothing new is pushed.
			reg.Reset()
			again := r.run(root(t), inputs)
			if again.err != nil {
				t.Fatalf("%v\n%s", again.err, again.log)
			}
			for _, q := range reg.Requests() {
				if q.Method == http.MethodPut || q.Method == http.MethodPost {
					t.Errorf("the second run wrote: %s", q)
				}
			}
			if again.outputs["referrers"] != res.outputs["referrers"] || !strings.Contains(again.summary, "unchanged") {
				t.Errorf("second run: referrers %q (were %q)\n%s", again.outputs["referrers"], res.outputs["referrers"], again.summary)
			}
		})
	}

	// A key from a secret (cosign's encrypted format, its password from another secret).
	reg := testregistry.NewOCI(t)
	r.t = t
	img := testregistry.PushImage(t, reg.Host(), "app", "1.0")
	image := reg.Host() + "/app@" + img.Index.Digest.String()
	keyGen := &runner{t: t, toolCache: r.toolCache, path: r.path, env: append(append([]string{}, r.env...), "COSIGN_PASSWORD=secret")}
	if out, code := compat(t, keyGen, "generate-key-pair", "--output-key-prefix", filepath.Join(tmp, "ci")); code != 0 {
		t.Fatal(out)
	}
	key, err := os.ReadFile(filepath.Join(tmp, "ci.key"))
	if err != nil {
		t.Fatal(err)
	}
	res := r.run(root(t), map[string]string{"spec": spec, "images": image, "sign": "key", "key": string(key), "key-password": "secret", "plain-http": "true", "skip-unchanged": "false"})
	if res.err != nil || len(strings.Split(res.outputs["bundles"], "\n")) != 3 {
		t.Fatalf("sign with a key: %v %q\n%s", res.err, res.outputs, res.log)
	}
	if out, code := compat(t, r, "verify", "--plain-http", image, "--key", filepath.Join(tmp, "ci.pub")); code != 0 || strings.Count(out, "VERIFIED") != 3 {
		t.Fatalf("verify --key: exit %d\n%s", code, out)
	}
	// Bad inputs say what is wrong.
	if res := r.run(root(t), map[string]string{"spec": spec, "images": image, "sign": "key", "plain-http": "true"}); res.err == nil || !strings.Contains(res.log, "sign: key needs the key input") {
		t.Fatalf("sign key without key: %v\n%s", res.err, res.log)
	}
	if res := r.run(root(t), map[string]string{"spec": spec, "images": "\n# none\n"}); res.err == nil || !strings.Contains(res.log, "images input is empty") {
		t.Fatalf("no images: %v\n%s", res.err, res.log)
	}
}

// TestCheckAction: the check Action fails the job when an image does not fit the nodes, with the
// report as the job summary and the totals as outputs.
func TestCheckAction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds compat-attach")
	}
	tmp := t.TempDir()
	r := &runner{t: t, toolCache: toolCache, env: []string{"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache")}}
	reg := testregistry.NewOCI(t)
	img := testregistry.PushImage(t, reg.Host(), "app", "1.0")
	image := reg.Host() + "/app@" + img.Index.Digest.String()
	spec := filepath.Join(root(t), "examples", "hello", "compat.cue")
	if res := r.run(root(t), map[string]string{"spec": spec, "images": image, "plain-http": "true"}); res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.log)
	}
	node := func(name, kernelMajor string) string {
		p := filepath.Join(tmp, "nodes", name+".json")
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := `{"flags": {"cpu.cpuid": {"elements": {"CMOV": {}, "CMPXCHG8": {}, "FXSR": {}, "MMX": {}, "SSE": {}, "SSE2": {}, "X87": {}}}},
 "attributes": {"kernel.version": {"elements": {"major": "` + kernelMajor + `", "minor": "0"}}, "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}`
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	checkDir := filepath.Join(root(t), "actions", "check")
	ok := r.run(checkDir, map[string]string{"images": image, "nodes": node("modern", "6"), "plain-http-registries": reg.Host()})
	if ok.err != nil || ok.outputs["compatible"] != "1" || ok.outputs["incompatible"] != "0" || !strings.Contains(ok.summary, "# Compatibility report") {
		t.Fatalf("a node that fits: %v %q\n%s\n%s", ok.err, ok.outputs, ok.log, ok.summary)
	}
	bad := r.run(checkDir, map[string]string{"images": image, "nodes": node("old", "2"), "plain-http-registries": reg.Host()})
	if bad.err == nil || bad.outputs["incompatible"] != "1" || !strings.Contains(bad.summary, "kernel new enough") {
		t.Fatalf("a node with a 2.x kernel: %v %q\n%s\n%s", bad.err, bad.outputs, bad.log, bad.summary)
	}
}
