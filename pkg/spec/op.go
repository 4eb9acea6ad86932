package spec

import "fmt"

// Op is an NFD match operator (api/nfd/v1alpha1 MatchOp).
type Op string

// The operators NFD v0.18 evaluates.
const (
	OpIn           Op = "In"
	OpNotIn        Op = "NotIn"
	OpInRegexp     Op = "InRegexp"
	OpExists       Op = "Exists"
	OpDoesNotExist Op = "DoesNotExist"
	OpGt           Op = "Gt"
	OpGe           Op = "Ge"
	OpLt           Op = "Lt"
	OpLe           Op = "Le"
	OpGtLt         Op = "GtLt"
	OpGeLe         Op = "GeLe"
	OpIsTrue       Op = "IsTrue"
	OpIsFalse      Op = "IsFalse"
)

// Ops lists every operator in NFD's documentation order.
var Ops = []Op{OpIn, OpNotIn, OpInRegexp, OpExists, OpDoesNotExist, OpGt, OpGe, OpLt, OpLe, OpGtLt, OpGeLe, OpIsTrue, OpIsFalse}

// Arity returns the number of values op takes: min and max (max < 0: unbounded). ok is false for
// an unknown operator.
func (op Op) Arity() (min, max int, ok bool) {
	switch op {
	case OpIn, OpNotIn, OpInRegexp:
		return 1, -1, true
	case OpExists, OpDoesNotExist, OpIsTrue, OpIsFalse:
		return 0, 0, true
	case OpGt, OpGe, OpLt, OpLe:
		return 1, 1, true
	case OpGtLt, OpGeLe:
		return 2, 2, true
	}
	return 0, 0, false
}

// AllowsVersion reports whether op accepts `type: version`.
func (op Op) AllowsVersion() bool {
	switch op {
	case OpGt, OpGe, OpLt, OpLe, OpGtLt, OpGeLe:
		return true
	}
	return false
}

// String returns the expression in NFD's text form, for example `Ge [5.15] (version)`.
func (e *MatchExpression) String() string {
	if e == nil {
		return "<nil>"
	}
	s := string(e.Op)
	if len(e.Value) > 0 {
		s += fmt.Sprintf(" %v", e.Value)
	}
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	return s
}
