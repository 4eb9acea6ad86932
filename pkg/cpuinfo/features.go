package cpuinfo

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	nfdv1alpha1 "sigs.k8s.io/node-feature-discovery/api/nfd/v1alpha1"
)

// Feature keys of [Info.Features], as compatkit keys NFD's cpu source features.
const (
	// CpuidKey is the flag set of CPU features (NFD's cpu.cpuid).
	CpuidKey = "cpu.cpuid"
	// ModelKey is the attribute set of the CPU model (NFD's cpu.model: vendor_id, family, id,
	// hypervisor; plus compatkit's "implementer" on arm64).
	ModelKey = "cpu.model"
)

// x86Flags maps Linux x86 /proc/cpuinfo flag names (arch/x86/include/asm/cpufeatures.h) to the
// klauspost/cpuid v2.4.0 FeatureID names NFD v0.19 reports on amd64, for the CPUID bits both
// sides read. Flags not listed (lm, pse, constant_tsc, pku, ...) have no klauspost name; "tbm"
// has one (TBM) but klauspost never sets it, so NFD never reports it; x86 "sha512" is not
// klauspost's SHA512 (an arm64 name).
//
// Features inferred rather than mapped (see x86Features): OSXSAVE, AVXSLOW, HTT, FXSROPT,
// POPCNT (from abm), IBRS, SPEC_CTRL_SSBD, TSA_L1_NO, TSA_SQ_NO, and the gating klauspost applies
// (FMA3/AVX-dependent and AVX-512-dependent features).
var x86Flags = map[string]string{
	// CPUID 1 EDX/ECX
	"fpu": "X87", "cx8": "CMPXCHG8", "sep": "SYSEE", "cmov": "CMOV", "mmx": "MMX", "fxsr": "FXSR",
	"sse": "SSE", "sse2": "SSE2", "pni": "SSE3", "vmx": "VMX", "ssse3": "SSSE3", "sse4_1": "SSE4",
	"sse4_2": "SSE42", "aes": "AESNI", "pclmulqdq": "CLMUL", "movbe": "MOVBE", "popcnt": "POPCNT",
	"rdrand": "RDRAND", "hypervisor": "HYPERVISOR", "f16c": "F16C", "cx16": "CX16", "xsave": "XSAVE",
	"avx": "AVX",
	// CPUID 7.0 EBX/ECX/EDX
	"bmi1": "BMI1", "sgx": "SGX", "hle": "HLE", "erms": "ERMS", "rtm": "RTM", "mpx": "MPX",
	"rdseed": "RDSEED", "adx": "ADX", "sha_ni": "SHA", "waitpkg": "WAITPKG", "shstk": "CETSS",
	"user_shstk": "CETSS", "gfni": "GFNI", "vaes": "VAES", "vpclmulqdq": "VPCLMULQDQ", "tme": "TME",
	"cldemote": "CLDEMOTE", "movdiri": "MOVDIRI", "movdir64b": "MOVDIR64B", "enqcmd": "ENQCMD",
	"sgx_lc": "SGXLC", "fsrm": "FSRM", "srbds_ctrl": "SRBDS_CTRL", "md_clear": "MD_CLEAR",
	"rtm_always_abort": "RTM_ALWAYS_ABORT", "serialize": "SERIALIZE", "hybrid_cpu": "HYBRID_CPU",
	"tsxldtrk": "TSXLDTRK", "pconfig": "PCONFIG", "ibt": "CETIBT", "ibpb": "IBPB", "spec_ctrl": "IBPB",
	"stibp": "STIBP", "intel_stibp": "STIBP", "flush_l1d": "FLUSH_L1D",
	"arch_capabilities": "IA32_ARCH_CAP", "core_capabilities": "IA32_CORE_CAP",
	// CPUID 7.1 EAX/EDX, 7.2 EDX
	"sm3": "SM3_X86", "sm4": "SM4_X86", "cmpccxadd": "CMPCCXADD", "fzrm": "MOVSB_ZL",
	"fsrs": "STOSB_SHORT", "fsrc": "CMPSB_SCADBS_SHORT", "fred": "FRED", "hreset": "HRESET",
	"avx_ifma": "AVXIFMA", "lam": "LAM", "avx_vnni_int8": "AVXVNNIINT8",
	"avx_ne_convert": "AVXNECONVERT", "avx_vnni_int16": "AVXVNNIINT16", "prefetchi": "PREFETCHI",
	"avx10": "AVX10", "apx": "APX_F", "psfd": "PSFD", "ipred_ctrl": "IDPRED_CTRL",
	"rrsba_ctrl": "RRSBA_CTRL", "bhi_ctrl": "BHI_CTRL", "mcdt_no": "MCDT_NO",
	// CPUID 0xD.1
	"xsaveopt": "XSAVEOPT", "xsavec": "XSAVEC", "xgetbv1": "XGETBV1", "xsaves": "XSAVES",
	// CPUID 0x80000001
	"abm": "LZCNT", "lahf_lm": "LAHF", "svm": "SVM", "sse4a": "SSE4A", "ibs": "IBS", "topoext": "TOPEXT",
	"syscall": "SYSCALL", "nx": "NX", "mmxext": "MMXEXT", "fxsr_opt": "FXSROPT", "rdtscp": "RDTSCP",
	"3dnowext": "AMD3DNOWEXT", "3dnow": "AMD3DNOW",
	// CPUID 0x80000007, 0x80000008 EBX
	"overflow_recov": "MCAOVERFLOW", "succor": "SUCCOR", "cpb": "CPBOOST", "amd_psfd": "PSFD",
	"cppc": "CPPC", "amd_ppin": "PPIN", "wbnoinvd": "WBNOINVD", "rdpru": "RDPRU",
	"invlpgb": "INVLPGB", "irperf": "MSRIRC", "clzero": "CLZERO",
	// CPUID 0x8000000A EDX (SVM)
	"npt": "SVMNP", "lbrv": "LBRVIRT", "svm_lock": "SVML", "nrip_save": "NRIPS",
	"tsc_scale": "TSCRATEMSR", "vmcb_clean": "VMCBCLEAN", "flushbyasid": "SVMFBASID",
	"decodeassists": "SVMDA", "pausefilter": "SVMPF", "pfthreshold": "SVMPFT",
	// CPUID 0x8000001F, 0x80000021 (AMD only: see x86Features)
	"sme": "SME", "sev": "SEV", "vm_page_flush": "MSR_PAGEFLUSH", "sev_es": "SEV_ES",
	"sev_snp": "SEV_SNP", "vmpl": "VMPL", "sme_coherent": "SME_COHERENT", "debug_swap": "SEV_DEBUGSWAP",
	"vte": "VTE", "srso_no": "SRSO_NO", "srso_user_kernel_no": "SRSO_USER_KERNEL_NO",
	"ibpb_brtype": "IBPB_BRTYPE", "sbpb": "SBPB", "tsa_l1_no": "TSA_L1_NO", "tsa_sq_no": "TSA_SQ_NO",
	"verw_clear": "TSA_VERW_CLEAR",
	// Other
	"tdx_guest": "TDX_GUEST",
	// Not printed by Linux (it prints pni) but the name archspec and others use for SSE3.
	"sse3": "SSE3",
}

// x86AVX512 are the klauspost features set only when the OS enabled the AVX-512 register state
// (klauspost checks XCR0[7:5]); from a dump that is "avx512f is listed", since Linux clears
// avx512f when it does not enable that state.
var x86AVX512 = map[string]bool{
	"AVX512F": true, "AVX512DQ": true, "AVX512IFMA": true, "AVX512PF": true, "AVX512ER": true,
	"AVX512CD": true, "AVX512BW": true, "AVX512VL": true, "AVX512VBMI": true, "AVX512VBMI2": true,
	"AVX512VNNI": true, "AVX512BITALG": true, "AVX512VPOPCNTDQ": true, "AVX512VP2INTERSECT": true,
	"AMXBF16": true, "AVX512FP16": true, "AMXTILE": true, "AMXINT8": true, "AVX512BF16": true,
	"WRMSRNS": true, "AMXFP16": true, "MSRLIST": true,
}

func init() {
	for _, n := range []string{"avx512f", "avx512dq", "avx512ifma", "avx512pf", "avx512er", "avx512cd", "avx512bw", "avx512vl"} {
		x86Flags[n] = strings.ToUpper(n)
	}
	for k, v := range map[string]string{
		"avx512vbmi": "AVX512VBMI", "avx512_vbmi2": "AVX512VBMI2", "avx512_vnni": "AVX512VNNI",
		"avx512_bitalg": "AVX512BITALG", "avx512_vpopcntdq": "AVX512VPOPCNTDQ",
		"avx512_vp2intersect": "AVX512VP2INTERSECT", "amx_bf16": "AMXBF16", "avx512_fp16": "AVX512FP16",
		"amx_tile": "AMXTILE", "amx_int8": "AMXINT8", "avx512_bf16": "AVX512BF16", "wrmsrns": "WRMSRNS",
		"amx_fp16": "AMXFP16", "msrlist": "MSRLIST", "amx_complex": "AMXCOMPLEX", "amx_tf32": "AMXTF32",
		"amx_transpose": "AMXTRANSPOSE", "avx2": "AVX2", "bmi2": "BMI2", "fma": "FMA3", "fma4": "FMA4",
		"xop": "XOP", "avx_vnni": "AVXVNNI",
	} {
		x86Flags[k] = v
	}
}

// x86Hidden are the klauspost/cpuid x86 features NFD can report that a /proc/cpuinfo dump cannot
// tell: Linux has no flag for them, or prints none in common kernels (hidden "" names), or
// klauspost reads a CPUID leaf Linux does not print. [Info.Unknown] names those not found in the
// dump: AMXFP8, AVX10_128, AVX10_256, AVX10_512, AVX512BMM, EFER_LMSLE_UNS, FP128, FP256, HWA,
// the IBS sub-features (IBSBRNTRGT ... IBS_ZEN4), IBRS_PREFERRED, IBRS_PROVIDES_SMP, INT_WBINVD,
// KEYLOCKER, KEYLOCKERW, MCOMMIT, MOVU, PMU_FIXEDCOUNTER_*, SEV_64BIT, SEV_ALTERNATIVE,
// SEV_RESTRICTED, SGXPQC, SRSO_MSR_FIX, STIBP_ALWAYSON, TLB_FLUSH_NESTED, VMSA_REGPROT; and,
// hidden by most kernels: IA32_CORE_CAP, SRBDS_CTRL, RTM_ALWAYS_ABORT, HYBRID_CPU, CMPCCXADD,
// MOVSB_ZL, STOSB_SHORT, CMPSB_SCADBS_SHORT, HRESET, PSFD, IDPRED_CTRL, RRSBA_CTRL, BHI_CTRL,
// MCDT_NO, PREFETCHI, AMXFP16, AVXIFMA, SME_COHERENT, VMPL, VTE, SRSO_NO, SRSO_USER_KERNEL_NO,
// IBPB_BRTYPE, SBPB, TSA_VERW_CLEAR.
var x86Hidden = []string{
	"AMXFP8", "AVX10_128", "AVX10_256", "AVX10_512", "AVX512BMM", "EFER_LMSLE_UNS", "FP128", "FP256",
	"HWA", "IBSBRNTRGT", "IBSFETCHSAM", "IBSFFV", "IBSOPCNT", "IBSOPCNTEXT", "IBSOPSAM",
	"IBSRDWROPCNT", "IBSRIPINVALIDCHK", "IBS_FETCH_CTLX", "IBS_OPDATA4", "IBS_OPFUSE",
	"IBS_PREVENTHOST", "IBS_ZEN4", "IBRS_PREFERRED", "IBRS_PROVIDES_SMP", "INT_WBINVD", "KEYLOCKER",
	"KEYLOCKERW", "MCOMMIT", "MOVU", "PMU_FIXEDCOUNTER_CYCLES", "PMU_FIXEDCOUNTER_REFCYCLES",
	"PMU_FIXEDCOUNTER_INSTRUCTIONS", "PMU_FIXEDCOUNTER_TOPDOWN_SLOTS", "SEV_64BIT", "SEV_ALTERNATIVE",
	"SEV_RESTRICTED", "SGXPQC", "SRSO_MSR_FIX", "STIBP_ALWAYSON", "TLB_FLUSH_NESTED", "VMSA_REGPROT",
	"IA32_CORE_CAP", "SRBDS_CTRL", "RTM_ALWAYS_ABORT", "HYBRID_CPU", "CMPCCXADD", "MOVSB_ZL",
	"STOSB_SHORT", "CMPSB_SCADBS_SHORT", "HRESET", "PSFD", "IDPRED_CTRL", "RRSBA_CTRL", "BHI_CTRL",
	"MCDT_NO", "PREFETCHI", "AMXFP16", "AVXIFMA", "SME_COHERENT", "VMPL", "VTE", "SRSO_NO",
	"SRSO_USER_KERNEL_NO", "IBPB_BRTYPE", "SBPB", "TSA_VERW_CLEAR",
}

// x86AMDOnly are the features klauspost reads only when the vendor is AMD (CPUID 0x8000001F,
// 0x80000021): on other vendors (Hygon included) NFD never reports them.
var x86AMDOnly = map[string]bool{
	"SME": true, "SEV": true, "MSR_PAGEFLUSH": true, "SEV_ES": true, "SEV_SNP": true, "VMPL": true,
	"SME_COHERENT": true, "SEV_DEBUGSWAP": true, "VTE": true, "SRSO_NO": true,
	"SRSO_USER_KERNEL_NO": true, "IBPB_BRTYPE": true, "SBPB": true, "TSA_L1_NO": true,
	"TSA_SQ_NO": true, "TSA_VERW_CLEAR": true, "SEV_64BIT": true, "SEV_ALTERNATIVE": true,
	"SEV_RESTRICTED": true, "VMSA_REGPROT": true, "IBS_PREVENTHOST": true, "SRSO_MSR_FIX": true,
	"AVX512BMM": true,
}

// x86Vendors is klauspost/cpuid's vendor_id mapping, as NFD prints it (Vendor.String()).
var x86Vendors = map[string]string{
	"AMDisbetter!": "AMD", "AuthenticAMD": "AMD", "CentaurHauls": "VIA", "GenuineIntel": "Intel",
	"TransmetaCPU": "Transmeta", "GenuineTMx86": "Transmeta", "Geode by NSC": "NSC",
	"VIA VIA VIA": "VIA", "HygonGenuine": "Hygon", "Vortex86 SoC": "SiS", "SiS SiS SiS": "SiS",
	"RiseRiseRise": "SiS", "Genuine  RDC": "RDC",
}

// x86 family and model, as "cpu family" and "model" print them (decimal).
func (i *Info) x86FamilyModel() (family, model int, ok bool) {
	f, err1 := strconv.Atoi(i.Fields["cpu family"])
	m, err2 := strconv.Atoi(i.Fields["model"])
	return f, m, err1 == nil && err2 == nil
}

func (i *Info) has(flag string) bool {
	_, ok := slices.BinarySearch(i.Flags, flag)
	return ok
}

// x86Features returns the klauspost/cpuid feature names (sorted) the CPU of an amd64 dump has, as
// NFD v0.19 would report them (cpuid.CPU.FeatureSet() plus X86_64_V1..V4), with these inferences:
//   - OSXSAVE: when "xsave" is listed. Linux sets CR4.OSXSAVE whenever it keeps XSAVE (it clears
//     "xsave", and every feature depending on it, with noxsave), and never prints "osxsave".
//   - AVX, AVX2, FMA3, FMA4, XOP, AVXVNNI: klauspost requires the OS to enable the YMM state;
//     Linux clears avx (and, through its cpuid dependency table, fma, avx2, ...) when it does not.
//   - AVX-512 and AMX features (x86AVX512): only when "avx512f" is listed (OS enabled ZMM state).
//   - AVXSLOW: computed as klauspost does, from vendor, family and model (Intel family 6 model <
//     60, AMD family < 23 or family 23 model < 49) when AVX is there.
//   - HTT: "ht" and "siblings" > "cpu cores" on Intel or AMD (klauspost: HTT bit and more than one
//     thread per core).
//   - FXSROPT: klauspost sets it from the SSE bit (CPUID 1 EDX 25) as well as from "fxsr_opt".
//   - LZCNT and POPCNT from "abm"; BMI2 only with BMI1 (klauspost nests them).
//   - IBRS: "ibrs" on non-Intel only (klauspost reads the AMD bit only; Intel's "ibrs" comes from
//     SPEC_CTRL, which klauspost reports as IBPB).
//   - SPEC_CTRL_SSBD: "ssbd" on Intel; on AMD when "ssbd" is there without "virt_ssbd" and the
//     family is 19h or later, or 17h model >= 30h (earlier AMD "ssbd" may be Linux's LS_CFG one).
//   - TSA_L1_NO, TSA_SQ_NO: klauspost sets them for AMD families < 19h and family 1Ah models
//     00h-4Fh, 60h-7Fh.
//   - AMD-only leaves (x86AMDOnly) only when the vendor is AuthenticAMD.
func (i *Info) x86Features() []string {
	set := map[string]bool{}
	vendor := x86Vendors[i.Vendor]
	for _, f := range i.Flags {
		if n, ok := x86Flags[f]; ok {
			set[n] = true
		}
	}
	if i.has("abm") {
		set["POPCNT"] = true
	}
	if i.has("sse") {
		set["FXSROPT"] = true
	}
	osxsave := i.has("xsave")
	set["OSXSAVE"] = osxsave
	if !set["AVX"] || !osxsave {
		for _, n := range []string{"AVX", "AVX2", "FMA4", "XOP", "AVXVNNI"} {
			delete(set, n)
		}
	}
	if !osxsave {
		delete(set, "FMA3")
	}
	if !set["BMI1"] {
		delete(set, "BMI2")
	}
	if !i.has("avx512f") {
		for n := range x86AVX512 {
			delete(set, n)
		}
	}
	if vendor == "Intel" {
		delete(set, "IBRS")
	} else if i.has("ibrs") {
		set["IBRS"] = true
	}
	family, model, fmOK := i.x86FamilyModel()
	if i.has("ssbd") {
		switch {
		case vendor == "Intel":
			set["SPEC_CTRL_SSBD"] = true
		case vendor == "AMD" && !i.has("virt_ssbd") && fmOK && (family >= 0x19 || family == 0x17 && model >= 0x30):
			set["SPEC_CTRL_SSBD"] = true
		}
	}
	if vendor != "AMD" {
		for n := range x86AMDOnly {
			delete(set, n)
		}
	} else if fmOK && (family < 0x19 || family == 0x1a && (model <= 0x4f || model >= 0x60 && model <= 0x7f)) {
		set["TSA_L1_NO"], set["TSA_SQ_NO"] = true, true
	}
	if set["AVX"] && fmOK {
		switch vendor {
		case "Intel":
			set["AVXSLOW"] = family == 6 && model < 60
		case "AMD":
			set["AVXSLOW"] = family < 23 || family == 23 && model < 49
		}
	}
	if (vendor == "Intel" || vendor == "AMD") && i.has("ht") {
		s, err1 := strconv.Atoi(i.Fields["siblings"])
		c, err2 := strconv.Atoi(i.Fields["cpu cores"])
		set["HTT"] = err1 == nil && err2 == nil && s > c
	}
	var out []string
	for n, ok := range set {
		if ok {
			out = append(out, n)
		}
	}
	for l := 1; l <= x64Level(set); l++ {
		out = append(out, fmt.Sprintf("X86_64_V%d", l))
	}
	slices.Sort(out)
	return out
}

// x64Level is klauspost/cpuid's X64Level: the x86-64 psABI level (0-4) of a feature set.
func x64Level(set map[string]bool) int {
	if !set["SYSEE"] && !set["SYSCALL"] {
		return 0
	}
	levels := [][]string{
		{"CMOV", "CMPXCHG8", "X87", "FXSR", "MMX", "SSE", "SSE2"},
		{"CX16", "LAHF", "POPCNT", "SSE3", "SSE4", "SSE42", "SSSE3"},
		{"AVX", "AVX2", "BMI1", "BMI2", "F16C", "FMA3", "LZCNT", "MOVBE", "OSXSAVE"},
		{"AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL"},
	}
	level := 0
	for l, names := range levels {
		for _, n := range names {
			if !set[n] {
				return level
			}
		}
		level = l + 1
	}
	return level
}

// arm64Flags are the Linux arm64 hwcap names (/proc/cpuinfo "Features") NFD v0.19 reports, from
// AT_HWCAP bits 0-31 and AT_HWCAP2 bits 0-33 (cpuid_linux_arm64.go); NFD's name is the upper-case
// cpuinfo name for every one. Newer hwcaps (gcs, cssc, sve2p1, ...) are not reported by NFD.
var arm64Flags = strings.Fields(`fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp
cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc
flagm ssbs sb paca pacg dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm
svef32mm svef64mm svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme smei16i64 smef64f64
smei8i32 smef16f32 smeb16f32 smef32f32 smefa64 wfxt ebf16 sveebf16`)

// s390xFlags are the Linux s390x hwcap names ("features") NFD v0.19 reports
// (cpuid_linux_s390x.go; "edat" is NFD's EDAT for HWCAP_S390_HPAGE); NFD's name is the
// upper-case cpuinfo name for every one.
var s390xFlags = strings.Fields(`esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te vx
vxd vxe gs vxe2 vxp sort dflt vxp2 nnpa pcimio sie`)

// arm64Vendors is klauspost/cpuid's MIDR implementer mapping (NFD's cpu.model.vendor_id on arm64).
var arm64Vendors = map[int64]string{
	0xc0: "Ampere", 0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x44: "DEC", 0x46: "Fujitsu",
	0x49: "Infineon", 0x4d: "Motorola", 0x4e: "NVIDIA", 0x50: "AMCC", 0x51: "Qualcomm",
	0x56: "Marvell", 0x69: "Intel",
}

// ArmImplementers names the arm64 MIDR implementer codes ("CPU implementer"), for compatkit's
// cpu.model "implementer" attribute; an unlisted code is "unknown".
var ArmImplementers = map[int64]string{
	0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x44: "DEC", 0x46: "Fujitsu", 0x48: "HiSilicon",
	0x49: "Infineon", 0x4d: "Freescale", 0x4e: "NVIDIA", 0x50: "APM", 0x51: "Qualcomm",
	0x53: "Samsung", 0x56: "Marvell", 0x61: "Apple", 0x66: "Faraday", 0x69: "Intel",
	0x6d: "Microsoft", 0x70: "Phytium", 0xc0: "Ampere",
}

// riscvVendors is klauspost/cpuid's mvendorid mapping.
var riscvVendors = map[uint64]string{0x489: "SiFive", 0x5b7: "StarFive", 0x5b1: "THead", 0x31e: "Andes", 0x710: "SpacemiT"}

var powerGen = regexp.MustCompile(`^POWER(\d+)`)

// PowerGeneration returns n of a ppc64le "cpu : POWERn..." line (8 for "POWER8NVL (raw)"), or 0.
func (i *Info) PowerGeneration() int {
	m := powerGen.FindStringSubmatch(strings.ToUpper(i.ModelName))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ppc64leFeatures infers NFD's ppc64le hwcap names from the POWER generation, as ISA levels make
// them certain on a little-endian Linux: PPC32, PPC64, FPU, MMU, ALTIVEC (also printed as
// "altivec supported"), DFP (POWER6+), SMT, IC_SNOOP, ARCHPMU, TRUE_LE,
// VSX and ARCH_2_06 (POWER7+), ARCH_2_07, VCRYPTO, ISEL, TAR, DSCR (POWER8+), ARCH_3_00, DARN,
// IEEE128 (POWER9+), ARCH_3_1, MMA (POWER10+). HTM, HTM-NOSC, HTM-NO-SUSPEND, EBB and SCV depend
// on firmware and kernel and are in [Info.Unknown]; ARCH_2_05 and POWER6X are not inferred (Linux
// does not set them on POWER7 and later).
func (i *Info) ppc64leFeatures() []string {
	g := i.PowerGeneration()
	if g == 0 {
		return nil
	}
	out := []string{"PPC32", "PPC64", "FPU", "MMU", "ALTIVEC", "SMT", "IC_SNOOP", "ARCHPMU", "TRUE_LE"}
	if g >= 6 {
		out = append(out, "DFP")
	}
	if g >= 7 {
		out = append(out, "VSX", "ARCH_2_06")
	}
	if g >= 8 {
		out = append(out, "ARCH_2_07", "VCRYPTO", "ISEL", "TAR", "DSCR")
	}
	if g >= 9 {
		out = append(out, "ARCH_3_00", "DARN", "IEEE128")
	}
	if g >= 10 {
		out = append(out, "ARCH_3_1", "MMA")
	}
	slices.Sort(out)
	return out
}

// riscvFeatures names the riscv64 extensions as klauspost/cpuid v2.4.0 does (RV_IMA for i+m+a,
// RV_C, RV_F, RV_D, RV_V, RV_ZBA, ..., and the RV_ZKN/RV_ZKS/RV_ZVKNG/RV_ZVKSG suites); other
// extensions follow the same pattern, "RV_" + upper case (RV_ZICNTR, RV_SSTC, ...). NFD v0.19 has
// no cpu source on linux/riscv64 (its cpuid code does not build there), so these are compatkit's
// names, chosen to equal what NFD's amd64 code path (cpuid.CPU.FeatureSet()) would give.
func (i *Info) riscvFeatures() []string {
	set := map[string]bool{}
	for _, e := range i.Flags {
		switch e {
		case "i", "m", "a":
		default:
			set["RV_"+strings.ToUpper(e)] = true
		}
	}
	if i.has("i") && i.has("m") && i.has("a") {
		set["RV_IMA"] = true
	}
	all := func(ns ...string) bool {
		for _, n := range ns {
			if !set["RV_"+n] {
				return false
			}
		}
		return true
	}
	set["RV_ZKN"] = set["RV_ZKN"] || all("ZKND", "ZKNE", "ZKNH", "ZBKB", "ZBKC", "ZBKX", "ZKT")
	set["RV_ZKS"] = set["RV_ZKS"] || all("ZKSED", "ZKSH", "ZBKB", "ZBKC", "ZBKX", "ZKT")
	set["RV_ZVKNG"] = set["RV_ZVKNG"] || all("ZVKNED", "ZVKNHB", "ZVKG", "ZVKB", "ZVKT")
	set["RV_ZVKSG"] = set["RV_ZVKSG"] || all("ZVKSED", "ZVKSH", "ZVKG", "ZVKB", "ZVKT")
	var out []string
	for n, ok := range set {
		if ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func upperKnown(flags, known []string) []string {
	var out []string
	for _, f := range flags {
		if slices.Contains(known, f) {
			out = append(out, strings.ToUpper(f))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CpuidFlags returns the sorted cpu.cpuid flag names of [Info.Features].
func (i *Info) CpuidFlags() []string {
	switch i.Arch {
	case "amd64":
		return i.x86Features()
	case "arm64":
		return upperKnown(i.Flags, arm64Flags)
	case "s390x":
		return upperKnown(i.Flags, s390xFlags)
	case "ppc64le":
		return i.ppc64leFeatures()
	case "riscv64":
		return i.riscvFeatures()
	}
	return nil
}

func parseNum(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	return n, err == nil
}

var nonLabel = regexp.MustCompile("[^-A-Za-z0-9_.]+")

// Model returns the cpu.model attributes of [Info.Features]: NFD v0.19's getCPUModel values
// (vendor_id, family, id as decimal strings, hypervisor) as that machine would give them, where
// the dump can tell:
//   - amd64: vendor_id is klauspost's name for "vendor_id" (Intel, AMD, Hygon, VIA, ...;
//     "VendorUnknown" otherwise, e.g. Zhaoxin); family and id are "cpu family" and "model" (id
//     keeps only the low 4 bits for base families 7-14, as klauspost does); hypervisor is "none"
//     without the "hypervisor" flag and absent with it (the dump does not name the hypervisor).
//   - arm64: when "cpuid" is in Features (else klauspost cannot read MIDR_EL1: "VendorUnknown",
//     "0", "0"), vendor_id from the implementer (klauspost's short list), family =
//     variant<<4 | 0xF (MIDR architecture is 0xF on every ARMv8+ core), id = part<<4 | revision;
//     hypervisor "none" (klauspost never detects one on arm64). compatkit adds "implementer":
//     the implementer's name from [ArmImplementers], or "unknown"; NFD has no such attribute.
//   - s390x: vendor_id "IBM_S390" (sanitized), family = first "identification", id = last
//     "machine" (both "0" on kernels without per-cpu blocks); hypervisor absent (NFD reads
//     /proc/sysinfo).
//   - ppc64le: "VendorUnknown", "0", "0", "none" (klauspost reads nothing there).
//   - riscv64 (no NFD cpu source; what klauspost's hwprobe path gives): vendor_id from
//     "mvendorid" (SiFive, StarFive, THead, Andes, SpacemiT, else "VendorUnknown"), family =
//     mimpid, id = marchid (as Go int, so a marchid with the top bit set is negative), "0" when
//     absent; hypervisor "none".
func (i *Info) Model() map[string]string {
	m := map[string]string{"vendor_id": "VendorUnknown", "family": "0", "id": "0", "hypervisor": "none"}
	switch i.Arch {
	case "amd64":
		if v, ok := x86Vendors[i.Vendor]; ok {
			m["vendor_id"] = v
		}
		if f, id, ok := i.x86FamilyModel(); ok {
			if f >= 7 && f <= 14 {
				id &= 0xf
			}
			m["family"], m["id"] = strconv.Itoa(f), strconv.Itoa(id)
		}
		if i.has("hypervisor") {
			delete(m, "hypervisor")
		}
	case "arm64":
		impl, okImpl := parseNum(i.Fields["CPU implementer"])
		m["implementer"] = "unknown"
		if n, ok := ArmImplementers[impl]; ok && okImpl {
			m["implementer"] = n
		}
		if !i.has("cpuid") || !okImpl {
			break
		}
		if v, ok := arm64Vendors[impl]; ok {
			m["vendor_id"] = v
		}
		variant, _ := parseNum(i.Fields["CPU variant"])
		part, _ := parseNum(i.Fields["CPU part"])
		rev, _ := parseNum(i.Fields["CPU revision"])
		m["family"] = strconv.FormatInt((variant&0xf)<<4|0xf, 10)
		m["id"] = strconv.FormatInt((part&0xfff)<<4|rev&0xf, 10)
	case "s390x":
		delete(m, "hypervisor")
		if v := nonLabel.ReplaceAllString(i.Vendor, "_"); v != "" {
			m["vendor_id"] = v
		}
		fam, id := "", ""
		for _, f := range i.all {
			switch f.key {
			case "identification":
				if fam == "" {
					fam = f.value
				}
			case "machine":
				id = f.value
			}
		}
		if fam != "" && fam != "0" {
			m["family"] = fam
		}
		if id != "" && id != "0" {
			m["id"] = id
		}
	case "riscv64":
		if v, err := strconv.ParseUint(i.Vendor, 0, 64); err == nil {
			if n, ok := riscvVendors[v]; ok {
				m["vendor_id"] = n
			}
		}
		if v, err := strconv.ParseUint(i.Fields["mimpid"], 0, 64); err == nil {
			m["family"] = strconv.Itoa(int(v))
		}
		if v, err := strconv.ParseUint(i.Fields["marchid"], 0, 64); err == nil {
			m["id"] = strconv.Itoa(int(v))
		}
	}
	return m
}

// Features returns the features NFD v0.19's cpu source would report on the machine of the dump,
// keyed as compatkit keys them: Flags[CpuidKey] (see [Info.CpuidFlags]; on amd64 including
// X86_64_V1..V4, and all flags: NFD's attributeBlacklist only filters labels) and
// Attributes[ModelKey] (see [Info.Model]). Nothing else of NFD's cpu source (cstate, pstate, rdt,
// security, sst, topology, coprocessor, the cpu.cpuid AVX10_VERSION attribute) can be read from
// /proc/cpuinfo, so it is absent. Never nil.
func (i *Info) Features() *nfdv1alpha1.Features {
	f := nfdv1alpha1.NewFeatures()
	if i == nil {
		return f
	}
	f.Flags[CpuidKey] = nfdv1alpha1.NewFlagFeatures(i.CpuidFlags()...)
	f.Attributes[ModelKey] = nfdv1alpha1.NewAttributeFeatures(i.Model())
	return f
}

// Unknown returns, as short sentences, what the dump cannot tell about the features
// [Info.Features] reports, so a caller can print "unknown on this host" rather than "not
// present": NFD flags Linux never prints (or hides, or firmware may clear), the hypervisor, and
// attributes the dump lacks. Nil for a nil Info.
func (i *Info) Unknown() []string {
	if i == nil {
		return nil
	}
	var out []string
	switch i.Arch {
	case "amd64":
		have := map[string]bool{}
		for _, n := range i.x86Features() {
			have[n] = true
		}
		vendor := x86Vendors[i.Vendor]
		var hidden []string
		for _, n := range x86Hidden {
			if !have[n] && (vendor == "AMD" || !x86AMDOnly[n]) {
				hidden = append(hidden, n)
			}
		}
		out = append(out, "cpu.cpuid: Linux does not print "+strings.Join(hidden, ", ")+" in /proc/cpuinfo; whether the CPU has them is unknown.")
		if i.has("hypervisor") {
			out = append(out, "cpu.model.hypervisor: the machine is a virtual machine, but /proc/cpuinfo does not name the hypervisor.")
		}
		if i.has("avx10") {
			out = append(out, "cpu.cpuid AVX10_VERSION: /proc/cpuinfo does not give the AVX10 version.")
		}
		if vendor == "Intel" && !i.has("sgx") {
			out = append(out, "cpu.cpuid.SGX, SGXLC: Linux hides sgx when the firmware disables it.")
		}
		if vendor == "Intel" && !i.has("vmx") {
			out = append(out, "cpu.cpuid.VMX: Linux 5.6+ hides vmx when the firmware disables it.")
		}
		if vendor == "AMD" && !i.has("sme") {
			out = append(out, "cpu.cpuid.SME, SEV, SEV_ES, SEV_SNP: Linux hides them when the firmware does not enable memory encryption.")
		}
		if (vendor == "Intel" || vendor == "AMD") && i.has("ht") && !slices.Contains(i.x86Features(), "HTT") {
			out = append(out, "cpu.cpuid.HTT: the CPU has the ht bit but the dump lists one thread per core; SMT may be off in the kernel only.")
		}
		if vendor == "AMD" && i.has("ssbd") && !slices.Contains(i.x86Features(), "SPEC_CTRL_SSBD") && !i.has("virt_ssbd") {
			out = append(out, "cpu.cpuid.SPEC_CTRL_SSBD: on this AMD family Linux's ssbd may come from a non-CPUID mechanism.")
		}
		if _, _, ok := i.x86FamilyModel(); !ok {
			out = append(out, "cpu.model.family, id: the dump has no numeric \"cpu family\"/\"model\".")
		}
	case "arm64":
		if !i.has("cpuid") {
			out = append(out, "cpu.model: without the cpuid hwcap NFD reports VendorUnknown/0/0 whatever the CPU; the dump's implementer and part are not used.")
		}
		if _, ok := i.Fields["CPU implementer"]; !ok {
			out = append(out, "cpu.model: the dump has no \"CPU implementer\"/\"CPU part\" lines.")
		}
	case "s390x":
		out = append(out, "cpu.model.hypervisor: NFD reads it from /proc/sysinfo, not /proc/cpuinfo.")
		if _, ok := i.Fields["identification"]; !ok {
			out = append(out, "cpu.model.family, id: the dump has no per-cpu \"identification\"/\"machine\" lines (kernel older than 4.x).")
		}
	case "ppc64le":
		out = append(out, "cpu.cpuid: ppc64le /proc/cpuinfo prints no hwcaps; the flags are inferred from the POWER generation, and HTM, HTM-NOSC, HTM-NO-SUSPEND, EBB, SCV (firmware and kernel dependent) are unknown.")
		if i.PowerGeneration() == 0 {
			out = append(out, "cpu.cpuid: the \"cpu\" line names no POWER generation, so no flag is inferred.")
		}
	case "riscv64":
		out = append(out, "cpu.cpuid: NFD v0.19 has no cpu source on linux/riscv64; the RV_* names are klauspost/cpuid's, as compatkit reports them.")
		if _, ok := i.Fields["marchid"]; !ok {
			out = append(out, "cpu.model: the dump has no mvendorid/marchid/mimpid lines.")
		}
	}
	return out
}

// NFDFlag returns the cpu.cpuid element NFD reports on arch (a GOARCH) for the CPU feature Linux
// /proc/cpuinfo prints as name, and false when NFD does not report one for it. amd64: the
// klauspost/cpuid v2.4.0 name NFD uses (sse4_1 → SSE4, sse4_2 → SSE42, pni → SSE3, lahf_lm →
// LAHF, abm → LZCNT, fma → FMA3, fpu → X87, sha_ni → SHA, aes → AESNI, pclmulqdq → CLMUL,
// avx_vnni → AVXVNNI, ...); arm64 and s390x: the upper-case name of a hwcap NFD knows. This is
// compatkit's one table from kernel names to NFD's (pkg/microarch uses it for archspec's
// features). Features NFD infers rather than reads (OSXSAVE, X86_64_V*) have no cpuinfo name.
func NFDFlag(arch, name string) (string, bool) {
	switch arch {
	case "amd64":
		n, ok := x86Flags[name]
		return n, ok
	case "arm64":
		if slices.Contains(arm64Flags, name) {
			return strings.ToUpper(name), true
		}
	case "s390x":
		if slices.Contains(s390xFlags, name) {
			return strings.ToUpper(name), true
		}
	}
	return "", false
}

// UnknownFlags returns the cpu.cpuid flags NFD could report on the machine that the dump cannot
// tell, each with why, keyed by NFD's name: on amd64 the klauspost features Linux never prints in
// /proc/cpuinfo and the flags firmware can hide from it (SGX, SGXLC and VMX on Intel; SME, SEV,
// SEV_ES and SEV_SNP on AMD), when absent from the dump; on ppc64le HTM, HTM-NOSC,
// HTM-NO-SUSPEND, EBB and SCV. A flag the dump shows is never listed. [Info.Unknown] says the same
// in sentences, with what else is unknown.
func (i *Info) UnknownFlags() map[string]string {
	if i == nil {
		return nil
	}
	out := map[string]string{}
	switch i.Arch {
	case "amd64":
		have := map[string]bool{}
		for _, n := range i.x86Features() {
			have[n] = true
		}
		vendor := x86Vendors[i.Vendor]
		add := func(why string, names ...string) {
			for _, n := range names {
				if !have[n] {
					out[n] = why
				}
			}
		}
		for _, n := range x86Hidden {
			if vendor == "AMD" || !x86AMDOnly[n] {
				add("Linux does not print it in /proc/cpuinfo", n)
			}
		}
		if vendor == "Intel" {
			add("Linux hides it from /proc/cpuinfo when the firmware disables it", "SGX", "SGXLC", "VMX")
		}
		if vendor == "AMD" {
			add("Linux hides it from /proc/cpuinfo when the firmware does not enable memory encryption", "SME", "SEV", "SEV_ES", "SEV_SNP")
		}
	case "ppc64le":
		for _, n := range []string{"HTM", "HTM-NOSC", "HTM-NO-SUSPEND", "EBB", "SCV"} {
			out[n] = "ppc64le /proc/cpuinfo prints no hwcaps; it depends on the firmware and kernel"
		}
	}
	return out
}
