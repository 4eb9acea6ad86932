// Command sdk is what a tool writer's scheduler or admission webhook does with compatkit's SDK:
// decide whether a Kubernetes node can run an image, and which manifest of its index the node
// should get, trusting only specs signed under a policy. It prints the manifest, or why none fits
// (exit 3).
//
//	kubectl get node worker-3 -o json > node.json
//	go run ./examples/sdk [-plain-http] registry.example/app:1.0 node.json policy.yaml
//
// node.json holds one node (a Node, a NodeFeature or a feature file); the first is used. Flags come
// before the arguments.
//
// The decision is pkg/decide's, the one `compat-attach check`, `select` and `report` make.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compatkit/compatkit/pkg/decide"
	"github.com/compatkit/compatkit/pkg/host"
	"github.com/compatkit/compatkit/pkg/oci"
	"github.com/compatkit/compatkit/pkg/signing"
)

func main() {
	plainHTTP := flag.Bool("plain-http", false, "talk HTTP to the registry")
	usage(flag.Parse, 3, "sdk [-plain-http] IMAGE NODE.json POLICY.yaml")
	ctx := context.Background()
	nodes, err := host.ReadNodes(flag.Arg(1)) // a Node, NodeFeature or feature file
	check(err)
	policy, err := signing.LoadPolicy(flag.Arg(2)) // keys and keyless identities to trust
	check(err)
	verifier, err := policy.Compile(ctx)
	check(err)
	target, err := oci.Open(ctx, flag.Arg(0), oci.Options{PlainHTTP: *plainHTTP})
	check(err)
	img, err := decide.Open(ctx, target, &decide.Trust{Verifier: verifier})
	check(err)
	d, err := img.Decide(ctx, decide.NewHost("node "+nodes[0].Name, nodes[0].Features, nil), decide.Options{RequireTrusted: true})
	check(err)
	if d.Selected == nil {
		fmt.Printf("NOT COMPATIBLE with %s: %s\n", d.Host, d.Why())
		os.Exit(3)
	}
	fmt.Printf("COMPATIBLE: %s (%s, score %d)\n", img.Ref(d.Selected.Manifest), d.Selected.Platform, d.Selected.Score)
}

// usage parses the flags and exits 2 unless n arguments follow.
func usage(parse func(), n int, line string) {
	if parse(); flag.NArg() != n {
		fmt.Fprintln(os.Stderr, "usage:", line)
		os.Exit(2)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
