package author

import (
	"context"
	"testing"
)

// BenchmarkCompileExample measures compiling the shipped example's compat.cue (load, unify with
// #Document, validate, export, parse): the cost of vet, export and attach before any request.
func BenchmarkCompileExample(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Compile(ctx, []string{"../../examples/hello/compat.cue"}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
