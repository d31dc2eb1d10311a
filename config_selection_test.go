package multivalue

import (
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// parseErrorsSelection are version 2's value and selection options, broken:
// the body of `multivalue example.org {` ... `}`, whose first line is line 2.
var parseErrorsSelection = []parseErrorCase{
	{"weight out of range", `
    records www A {
        127.0.0.1 { weight 256 }
    }`, 3, `weight "256" must be a whole number from 0 to 255`},
	{"weight not a number", `
    records www A {
        weight -1
        127.0.0.1
    }`, 3, `weight "-1" must be a whole number from 0 to 255`},
	{"weight without a value", `
    records www A {
        127.0.0.1 { weight }
    }`, 3, "wrong number of arguments for weight: want 1, have 0"},
	{"weight in the multivalue block", `
    weight 2
    records www A 127.0.0.1`, 2, "weight goes in a records block or a value's block"},
	{"tier 0", `
    records www A {
        127.0.0.1 { tier 0 }
    }`, 3, `tier "0" must be a whole number from 1 to 255`},
	{"tier in the multivalue block", `
    tier 2
    records www A 127.0.0.1`, 2, "tier goes in a records block or a value's block"},
	{"weight twice in a value", `
    records www A {
        127.0.0.1 {
            weight 2
            weight 3
        }
    }`, 5, "weight given twice (first on line 4)"},
	{"drain with an argument", `
    records www A {
        127.0.0.1 { drain now }
    }`, 3, "wrong number of arguments for drain: want none, have 1"},
	{"drain in a records block", `
    records www A {
        drain
        127.0.0.1
    }`, 3, "drain goes in a value's block"},
	{"drain in the multivalue block", `
    drain
    records www A 127.0.0.1`, 2, "drain goes in a value's block"},
	{"min_healthy 0", `
    min_healthy 0
    records www A 127.0.0.1`, 2, `min_healthy "0" must be a whole number from 1 to 255`},
	{"min_healthy in a value", `
    records www A {
        127.0.0.1 { min_healthy 2 }
    }`, 3, `unknown value option "min_healthy"`},
	{"sticky v4 prefix too long", `
    sticky 33
    records www A 127.0.0.1`, 2, `sticky V4_PREFIX "33" must be a whole number from 0 to 32`},
	{"sticky v6 prefix too long", `
    records www A {
        sticky 24 129
        127.0.0.1
    }`, 3, `sticky V6_PREFIX "129" must be a whole number from 0 to 128`},
	{"sticky with three prefixes", `
    sticky 24 56 64
    records www A 127.0.0.1`, 2, "wrong number of arguments for sticky: want at most 2, have 3"},
	{"sticky twice", `
    sticky
    sticky 16
    records www A 127.0.0.1`, 3, "sticky given twice (first on line 2)"},
	{"slow_start not a duration", `
    slow_start soon
    records www A 127.0.0.1`, 2, `slow_start "soon" is not a duration`},
	{"slow_start zero", `
    records www A {
        slow_start 0s
        127.0.0.1
    }`, 3, "slow_start 0s out of range"},
	{"panic_threshold over 100", `
    panic_threshold 101
    records www A 127.0.0.1`, 2, `panic_threshold "101" must be a whole number from 0 to 100`},
	{"panic_threshold with a percent sign", `
    panic_threshold 50%
    records www A 127.0.0.1`, 2, `panic_threshold "50%" must be a whole number from 0 to 100`},
}

// TestParseSelection checks what version 2's options parse to: the defaults,
// a records block's defaults for its values, a value's own, and the
// multivalue block's selection options overridden per records block.
func TestParseSelection(t *testing.T) {
	c := caddy.NewTestController("dns", `multivalue example.org {
    sticky
    slow_start 30s
    panic_threshold 50
    records plain A 127.0.0.1 127.0.0.2
    records www A {
        weight 2
        tier 3
        min_healthy 2
        sticky 16 48
        panic_threshold 0
        127.0.0.1
        127.0.0.2 { weight 0 }
        127.0.0.3 {
            tier 1
            drain
        }
    }
}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	type attrs struct {
		weight, tier int
		drain        bool
	}
	want := map[string]map[string]attrs{
		"plain.example.org.": {"127.0.0.1": {1, 1, false}, "127.0.0.2": {1, 1, false}},
		"www.example.org.":   {"127.0.0.1": {2, 3, false}, "127.0.0.2": {0, 3, false}, "127.0.0.3": {2, 1, true}},
	}
	wantSel := map[string]selection{
		"plain.example.org.": {minHealthy: 1, sticky: true, v4Prefix: 24, v6Prefix: 56, slowStart: 30 * time.Second, panicThreshold: 50},
		"www.example.org.":   {minHealthy: 2, sticky: true, v4Prefix: 16, v6Prefix: 48, slowStart: 30 * time.Second, panicThreshold: 0},
	}
	for _, s := range cfg.sets {
		if s.opts != wantSel[s.name] {
			t.Errorf("%s: selection %+v, want %+v", s.name, s.opts, wantSel[s.name])
		}
		for _, v := range s.values {
			if got := (attrs{v.weight, v.tier, v.drain}); got != want[s.name][v.text] {
				t.Errorf("%s %s: %+v, want %+v", s.name, v.text, got, want[s.name][v.text])
			}
		}
	}

	// Without the options: Route 53's behaviour.
	c = caddy.NewTestController("dns", "multivalue example.org {\n records www A 127.0.0.1\n}")
	if cfg, err = parse(c); err != nil {
		t.Fatal(err)
	}
	if got := cfg.sets[0].opts; got != (selection{minHealthy: 1}) {
		t.Errorf("default selection %+v, want min_healthy 1 and nothing else", got)
	}
}
