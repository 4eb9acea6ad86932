// Command hello is the program inside the compatkit example image
// (examples/hello). It greets, then says which CPU level it was compiled for
// and which level the CPU it runs on offers.
//
// The image ships three builds of it: linux/amd64 (GOAMD64=v1),
// linux/amd64/v3 (GOAMD64=v3) and linux/arm64/v8. A GOAMD64=v3 build refuses
// to start on a CPU without x86-64-v3; the image's compatibility spec
// (compat.cue) says so, so that a host can pick the right image before it
// pulls or runs anything.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	name := "world"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Printf("Hello, %s!\n", name)
	fmt.Printf("built for: %s (%s/%s, %s)\n", builtFor, runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("runs on:   %s\n", runsOn())
}
