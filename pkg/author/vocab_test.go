package author

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/compatkit/compatkit/pkg/cpuinfo"
)

// cpuidDoc is a document whose one rule requires the cpu.cpuid flags.
func cpuidDoc(flags ...string) string {
	var b strings.Builder
	b.WriteString("version: \"v1alpha1\"\ncompatibilities: [{\n\trules: [{\n\t\tname: \"cpu\"\n\t\tmatchFeatures: [{\n\t\t\tfeature: \"cpu.cpuid\"\n\t\t\tmatchExpressions: {\n")
	for _, f := range flags {
		fmt.Fprintf(&b, "\t\t\t\t%s: {op: \"Exists\"}\n", strconv.Quote(f))
	}
	b.WriteString("\t\t\t}\n\t\t}]\n\t}]\n}]\n")
	return b.String()
}

// vetProblems compiles content as name in a temporary directory and returns its problems as
// lines ("" when it compiles).
func vetProblems(t *testing.T, name, content string, allow []string) string {
	t.Helper()
	dir := t.TempDir()
	p := write(t, dir, name, content)
	_, err := Compile(context.Background(), []string{p}, Options{Dir: dir, AllowFlags: allow})
	if err == nil {
		return ""
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("not an *Error: %v", err)
	}
	return ae.Error()
}

func TestCpuidTypos(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []string
	}{
		{"matchExpressions", "compat.cue", cpuidDoc("SSE42", "AVX521F"),
			[]string{`compat.cue:9:5: cpu.cpuid: unknown flag "AVX521F" (did you mean "AVX512F"?): NFD v0.19 never reports it; if a newer NFD does, set COMPATKIT_ALLOW_FLAGS=AVX521F`}},
		{"lower case", "compat.cue", cpuidDoc("avx2"),
			[]string{`compat.cue:8:5: cpu.cpuid: unknown flag "avx2" (did you mean "AVX2"?): NFD's names are case-sensitive`}},
		{"far from any name", "compat.cue", cpuidDoc("NOTAFLAGATALL"),
			[]string{`compat.cue:8:5: cpu.cpuid: unknown flag "NOTAFLAGATALL": NFD v0.19 never reports it`}},
		{"x86 domain flags", "compat.cue", `import x86 "compatkit.dev/domains/cpu/x86"

version: "v1alpha1"
required: (x86.#Config & {
	level: 3
	flags: ["SHA", "AVX512VNIN"]
}).rules
`, []string{`compat.cue:6:17: cpu.cpuid: unknown flag "AVX512VNIN" (did you mean "AVX512VNNI"?)`}},
		{"x86 domain lower case", "compat.cue", `import x86 "compatkit.dev/domains/cpu/x86"

version: "v1alpha1"
required: (x86.#Config & {flags: ["avx2"]}).rules
`, []string{`compat.cue:4:35: flags.0: cpu.cpuid: unknown flag "avx2" (did you mean "AVX2"?)`}},
		{"arm64 hwcaps", "compat.cue", `import "compatkit.dev/domains/cpu/arm64"

version: "v1alpha1"
required: (arm64.#Config & {hwcaps: ["SVE2", "I8MN"]}).rules
`, []string{`compat.cue:4:`, `"I8MN" is not allowed (did you mean "I8MM"?)`}},
		{"arm64 hwcaps in matchExpressions", "compat.cue", cpuidDoc("ASIMD", "SVEI8M"),
			[]string{`compat.cue:9:5: cpu.cpuid: unknown flag "SVEI8M" (did you mean "SVEI8MM"?)`}},
		{"matchName in YAML", "compat.yaml", `version: v1alpha1
compatibilities:
  - rules:
      - name: cpu
        matchFeatures:
          - feature: cpu.cpuid
            matchName: {op: In, value: [AVX2, SSE42X]}
`, []string{`compat.yaml:7:47: cpu.cpuid: unknown flag "SSE42X" (did you mean "SSE42"?)`}},
		{"matchAny in a platform", "compat.cue", `version: "v1alpha1"
platforms: "linux/arm64": {
	version: "v1alpha1"
	compatibilities: [{rules: [{
		name: "hwcaps"
		matchAny: [{matchFeatures: [{feature: "cpu.cpuid", matchExpressions: ATOMCIS: {op: "Exists"}}]}]
	}]}]
}
`, []string{`compat.cue:6:`, `unknown flag "ATOMCIS" (did you mean "ATOMICS"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := vetProblems(t, tt.file, tt.content, []string{})
			if got == "" {
				t.Fatalf("compiled, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("got\n%s\nwant it to contain %q", got, w)
				}
			}
		})
	}
}

func TestCpuidAllowFlags(t *testing.T) {
	doc := cpuidDoc("AVX2", "AVX10_2", "AMX_FUTURE")
	if got := vetProblems(t, "compat.cue", doc, []string{}); !strings.Contains(got, `"AVX10_2"`) || !strings.Contains(got, `"AMX_FUTURE"`) {
		t.Fatalf("want both new flags refused, got\n%s", got)
	}
	if got := vetProblems(t, "compat.cue", doc, []string{"AVX10_2", "AMX_FUTURE"}); got != "" {
		t.Errorf("Options.AllowFlags: %s", got)
	}
	// nil AllowFlags reads the environment variable: names separated by commas or spaces.
	t.Setenv(AllowFlagsEnv, "AVX10_2, AMX_FUTURE")
	if got := vetProblems(t, "compat.cue", doc, nil); got != "" {
		t.Errorf("%s: %s", AllowFlagsEnv, got)
	}
	t.Setenv(AllowFlagsEnv, "AVX10_2")
	if got := vetProblems(t, "compat.cue", doc, nil); strings.Contains(got, "AVX10_2") || !strings.Contains(got, "AMX_FUTURE") {
		t.Errorf("%s=AVX10_2: got\n%s", AllowFlagsEnv, got)
	}
	// The x86 domain's flags get the same escape hatch.
	x86 := "import x86 \"compatkit.dev/domains/cpu/x86\"\n\nversion: \"v1alpha1\"\nrequired: (x86.#Config & {flags: [\"AVX10_2\"]}).rules\n"
	if got := vetProblems(t, "compat.cue", x86, []string{"AVX10_2"}); got != "" {
		t.Errorf("x86 flags with AllowFlags: %s", got)
	}
}

func TestCpuidVocabularyAccepted(t *testing.T) {
	names := cpuinfo.KnownFlags()
	names = append(names, "RV_ZICSR", "RV_ZIFENCEI", "RV_SSTC", "RV_XTHEADVECTOR", "RV_H")
	if got := vetProblems(t, "compat.cue", cpuidDoc(names...), []string{}); got != "" {
		t.Errorf("every known name should vet:\n%s", got)
	}
	// Every value the cpu domains enumerate (x86 avx512 and amx, arm64 hwcaps) compiles to a
	// known flag.
	doc := `import (
	"list"
	x86 "compatkit.dev/domains/cpu/x86"
	"compatkit.dev/domains/cpu/arm64"
)

version: "v1alpha1"
compatibilities: [{rules: list.Concat([(x86.#Config & {
	level: 4
	avx512: ["F", "CD", "BW", "DQ", "VL", "VNNI", "BF16", "FP16", "IFMA", "VBMI", "VBMI2", "BITALG", "VPOPCNTDQ", "VP2INTERSECT"]
	amx: ["TILE", "INT8", "BF16", "FP16", "COMPLEX"]
	flags: ["SHA", "VAES", "GFNI", "AVXVNNI", "AVX10_VERSION"]
}).rules, (arm64.#Config & {armv8_2: true, hwcaps: [` + strings.Join(quoteAll(strings.Fields(`FP ASIMD EVTSTRM AES PMULL SHA1 SHA2 CRC32 ATOMICS
FPHP ASIMDHP CPUID ASIMDRDM JSCVT FCMA LRCPC DCPOP SHA3 SM3 SM4 ASIMDDP SHA512 SVE ASIMDFHM DIT USCAT
ILRCPC FLAGM SSBS SB PACA PACG DCPODP SVE2 SVEAES SVEPMULL SVEBITPERM SVESHA3 SVESM4 FLAGM2 FRINT
SVEI8MM SVEF32MM SVEF64MM SVEBF16 I8MM BF16 DGH RNG BTI MTE ECV AFP RPRES MTE3 SME SMEI16I64
SMEF64F64 SMEI8I32 SMEF16F32 SMEB16F32 SMEF32F32 SMEFA64 WFXT EBF16 SVEEBF16`)), ", ") + `]}).rules])}]
`
	if got := vetProblems(t, "compat.cue", doc, []string{}); got != "" {
		t.Errorf("the cpu domains' names should vet:\n%s", got)
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func TestCpuidOnlyChecksCpuid(t *testing.T) {
	// Element names of other feature sets stay open: a kernel option, a cpu.model attribute
	// compatkit adds, a typo there is not vet's to catch.
	doc := `version: "v1alpha1"
compatibilities: [{rules: [{
	name: "open"
	matchFeatures: [
		{feature: "kernel.config", matchExpressions: NOT_A_REAL_CONFIG: {op: "Exists"}},
		{feature: "cpu.model", matchExpressions: implementerr: {op: "Exists"}},
		{feature: "cpu.cpuid", matchName: {op: "InRegexp", value: ["^avx"]}},
	]
}]}]
`
	if got := vetProblems(t, "compat.cue", doc, []string{}); got != "" {
		t.Errorf("want no check outside cpu.cpuid names:\n%s", got)
	}
}

func TestSuggestFlag(t *testing.T) {
	for got, want := range map[string]string{
		"AVX521F": "AVX512F", "AVX512VNIN": "AVX512VNNI", "avx2": "AVX2", "sse4_2": "SSE42", "SSE42X": "SSE42",
		"x86_64_v3": "X86_64_V3", "XYZ": "", "HELLOWORLD": "",
	} {
		if s := suggestFlag(got); s != want {
			t.Errorf("suggestFlag(%q) = %q, want %q", got, s, want)
		}
	}
}
