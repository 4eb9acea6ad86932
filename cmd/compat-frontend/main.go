// Command compat-frontend is compatkit's BuildKit frontend (package buildkit): a Dockerfile build
// that also attaches, as in-toto attestations, the compatibility spec of each platform it builds,
// compiled from compat.cue in the build context.
//
// Use it from a Dockerfile's first line, "# syntax=REGISTRY/compat-frontend:TAG", or with buildctl:
//
//	buildctl build --frontend gateway.v0 --opt source=REGISTRY/compat-frontend:TAG \
//	    --local context=. --local dockerfile=. --opt platform=linux/amd64,linux/amd64/v3 \
//	    --output type=image,name=REGISTRY/app:1.0,push=true,oci-mediatypes=true,oci-artifact=true
//
// buildkit/Dockerfile builds its image. Run with -version to print the version.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto"

	"github.com/compatkit/compatkit/buildkit"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "v0.1.0-dev"

func main() {
	v := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *v {
		fmt.Println("compat-frontend", version)
		return
	}
	if err := grpcclient.RunFromEnvironment(appcontext.Context(), buildkit.Build); err != nil {
		fmt.Fprintf(os.Stderr, "compat-frontend: %v\n", err)
		os.Exit(1)
	}
}
