package infer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CUDARequirement is what an image's NVIDIA_REQUIRE_CUDA and CUDA_VERSION environment variables say
// (NVIDIA Container Toolkit: constraints separated by spaces are alternatives, those separated by
// commas within one alternative must all hold).
type CUDARequirement struct {
	// Require is NVIDIA_REQUIRE_CUDA as the image config sets it, "" if unset.
	Require string
	// Version is CUDA_VERSION ("12.2.0"), "" if unset.
	Version string
	// CUDA is the lowest CUDA version "major.minor" an alternative of Require names (cuda>=X.Y),
	// or, without one, the major.minor of Version; "" when neither says one.
	CUDA string
	// Drivers lists the driver alternatives of Require (brand=...,driver>=A,driver<B), in order.
	Drivers []DriverRange
	// Ignored lists the constraints that were not understood ("arch=...", "driver>=418.4x"
	// fractions are kept as their major), for comments.
	Ignored []string
}

// DriverRange is one alternative of NVIDIA_REQUIRE_CUDA on the driver's major version: Min <=
// major <= Max (Max 0: no upper bound). Brand is the brand= constraint ("tesla"), which compatkit's
// features do not report, so it is only cited.
type DriverRange struct {
	Min, Max int
	Brand    string
}

var constraintRe = regexp.MustCompile(`^([a-z]+)(>=|<=|==|=|>|<)([A-Za-z0-9._-]+)$`)

// ParseCUDA reads the NVIDIA_REQUIRE_CUDA and CUDA_VERSION values (empty: unset). It returns nil
// when both are empty. Constraints it cannot read are listed in Ignored, never an error.
func ParseCUDA(require, version string) *CUDARequirement {
	if require == "" && version == "" {
		return nil
	}
	c := &CUDARequirement{Require: require, Version: version}
	for _, alt := range strings.Fields(require) {
		var dr DriverRange
		hasDriver := false
		for _, con := range strings.Split(alt, ",") {
			m := constraintRe.FindStringSubmatch(con)
			if m == nil {
				c.Ignored = append(c.Ignored, con)
				continue
			}
			key, op, val := m[1], m[2], m[3]
			switch key {
			case "cuda":
				if (op == ">=" || op == "=" || op == "==") && majorMinor(val) != "" {
					if c.CUDA == "" || versionLess(majorMinor(val), c.CUDA) {
						c.CUDA = majorMinor(val)
					}
				} else {
					c.Ignored = append(c.Ignored, con)
				}
			case "driver":
				major, err := strconv.Atoi(strings.SplitN(val, ".", 2)[0])
				if err != nil || major <= 0 || major > 100000 {
					c.Ignored = append(c.Ignored, con)
					continue
				}
				hasDriver = true
				switch op {
				case ">=", ">":
					dr.Min = major
				case "<":
					if strings.Contains(val, ".") && !strings.HasSuffix(val, ".0") {
						dr.Max = major
					} else {
						dr.Max = major - 1
					}
				case "<=":
					dr.Max = major
				case "=", "==":
					dr.Min, dr.Max = major, major
				}
			case "brand":
				dr.Brand = val
			default:
				c.Ignored = append(c.Ignored, con)
			}
		}
		if hasDriver {
			c.Drivers = append(c.Drivers, dr)
		}
	}
	if c.CUDA == "" {
		c.CUDA = majorMinor(version)
	}
	return c
}

// majorMinor returns "M.m" of a version "M.m[.p]", "" when it has no such form.
func majorMinor(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return ""
	}
	for _, p := range parts[:2] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 1000 || strconv.Itoa(n) != p {
			return ""
		}
	}
	return parts[0] + "." + parts[1]
}

// versionLess compares two "M.m" versions.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || (am == bm && an < bn)
}
