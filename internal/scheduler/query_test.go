package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExprMatch(t *testing.T) {
	web := &Node{
		ID: "n1", InstanceID: "i-abcd1234", RunningTasks: 2,
		Attributes: map[string]string{
			"ecs.instance-type": "t2.small", "ecs.availability-zone": "us-east-1a",
			"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64",
			"stack": "prod", "cores": "16", "path": "a b/c",
		},
		Groups:       map[string]int{"service:web": 2, "family:gone": 0},
		AgentVersion: "1.14.5",
		RegisteredAt: time.Date(2018, 2, 13, 12, 0, 0, 0, time.UTC),
	}
	bare := &Node{ID: "n2", Disconnected: true, Attributes: map[string]string{"ecs.instance-type": "g2.2xlarge", "ecs.availability-zone": "us-east-1d", "role": "db"}}
	tests := []struct {
		expr      string
		web, bare bool
	}{
		{"attribute:ecs.instance-type == t2.small", true, false},
		{"attribute:ecs.instance-type equals t2.small", true, false},
		{"attribute:ecs.instance-type != t2.small", false, true},
		{"attribute:ecs.instance-type not_equals t2.small", false, true},
		{"attribute:ecs.instance-type =~ t2.*", true, false},
		{"attribute:ecs.instance-type matches 't2\\.(small|medium)'", true, false},
		{"attribute:ecs.instance-type =~ t2", false, false}, // whole value, as Java's matches
		{"attribute:ecs.instance-type !~ t2.*", false, true},
		{"attribute:ecs.instance-type not_matches t2.*", false, true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true, false},
		{"attribute:ecs.availability-zone in ['us-east-1a']", true, false},
		{"attribute:ecs.availability-zone !in [us-east-1a, us-east-1b]", false, true},
		{"attribute:ecs.availability-zone not_in [us-east-1a]", false, true},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", false, false},
		{"attribute:ecs.instance-type =~ g2.* or attribute:ecs.availability-zone != us-east-1d", true, true},
		{"attribute:stack == prod and not(attribute:role exists)", true, false},
		{"attribute:stack == prod && !(attribute:role exists)", true, false},
		{"attribute:stack == prod || attribute:role == db", true, true},
		{"attribute:role exists", false, true},
		{"attribute:role !exists", true, false},
		{"attribute:role not_exists", true, false},
		// An absent attribute satisfies no comparison, not even !=.
		{"attribute:stack != dev", true, false},
		{"not(attribute:stack == dev)", true, true},
		{"attribute:cores > 8", true, false},
		{"attribute:cores greater_than 100", false, false}, // numeric, not string, order
		{"attribute:cores >= 16", true, false},
		{"attribute:cores < 100", true, false},
		{"attribute:cores less_than_equal 15", false, false},
		{"attribute:path == 'a b/c'", true, false},
		{`attribute:path == "a b/c"`, true, false},
		{"task:group == service:web", true, false},
		{"task:group == family:gone", false, false}, // a zero count is no task
		{"not(task:group == service:web)", false, true},
		{"task:group in [service:db, service:web]", true, false},
		{"task:group =~ service:.*", true, false},
		{"task:group exists", true, false},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true, false},
		{"ec2InstanceId == i-abcd1234", true, false},
		{"ec2InstanceId exists", true, false},
		{"runningTasksCount == 2", true, false},
		{"runningTasksCount == 0", false, true},
		{"runningTasksCount > 1", true, false},
		{"agentConnected == true", true, false},
		{"agentConnected == false", false, true},
		{"agentVersion < 1.14.6", true, false},
		{"agentVersion < 1.100.0", true, false},
		{"agentVersion >= 1.14.5", true, false},
		{"registeredAt < 2018-02-14", true, false},
		{"registeredAt > 2018-02-13T11:00:00Z", true, false},
		{"registeredAt <= 2018-02-13T12:00:00+00:00", true, false},
		{"(attribute:stack == prod or attribute:role == db) and attribute:ecs.os-type == linux", true, false},
		{"attribute:stack == prod or attribute:role == db and attribute:ecs.os-type == linux", true, false}, // and binds tighter
		{"not not(attribute:role exists)", false, true},
		{"((attribute:role exists))", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := ParseExpression(tc.expr)
			if err != nil {
				t.Fatalf("ParseExpression: %v", err)
			}
			if got := e.Match(web); got != tc.web {
				t.Errorf("Match(web) = %v, want %v", got, tc.web)
			}
			if got := e.Match(bare); got != tc.bare {
				t.Errorf("Match(bare) = %v, want %v", got, tc.bare)
			}
			if e.String() != tc.expr {
				t.Errorf("String() = %q", e.String())
			}
		})
	}
}

func TestParseExpressionErrors(t *testing.T) {
	tests := []struct {
		expr string
		msg  string // substring of the error
		pos  int
	}{
		{"", "empty expression", 0},
		{"   ", "empty expression", 3},
		{"attribute:a", "expected an operator", 11},
		{"attribute:a ==", "expected a value", 14},
		{"attribute:a = b", "did you mean '=='", 12},
		{"attribute:a == b and", "expected a subject", 20},
		{"attribute:a == b c", "unexpected 'c'", 17},
		{"attribute: == b", "attribute name", 0},
		{"color == red", "unknown subject", 0},
		{"and == b", "expected a subject", 0},
		{"attribute:a in b", "expected '['", 15},
		{"attribute:a in [b", "expected ',' or ']'", 17},
		{"attribute:a in []", "expected a value in the list", 16},
		{"attribute:a in [b,]", "expected a value in the list", 18},
		{"attribute:a == 'b", "unterminated", 15},
		{"(attribute:a exists", "expected ')'", 19},
		{"attribute:a exists)", "unexpected ')'", 18},
		{"attribute:a =~ '('", "invalid regular expression", 15},
		{"attribute:a ! b", "expected 'exists' or 'in'", 14},
		{"attribute:a == b & attribute:c exists", "did you mean '&&'", 17},
		{"attribute:a == b | attribute:c exists", "did you mean '||'", 17},
		{"runningTasksCount > many", "integer", 20},
		{"registeredAt < yesterday", "invalid date", 15},
		{"task:group > a", "cannot be ordered", 13},
		{"not", "expected a subject", 3},
		{strings.Repeat("(", 200) + "attribute:a exists" + strings.Repeat(")", 200), "nested more than", 101},
		{"attribute:a == " + strings.Repeat("x", maxExprLen), "longer than", 0},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := ParseExpression(tc.expr)
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("ParseExpression() error = %v, want *ExprError", err)
			}
			if !strings.Contains(err.Error(), tc.msg) || ee.Pos != tc.pos {
				t.Fatalf("error = %q at %d, want %q at %d", err, ee.Pos, tc.msg, tc.pos)
			}
			if !strings.HasPrefix(err.Error(), "Invalid placement constraint expression") {
				t.Fatalf("error = %q lacks the ECS prefix", err)
			}
		})
	}
}

func TestZeroExprMatchesAll(t *testing.T) {
	var e *Expr
	if !e.Match(&Node{}) || !(&Expr{}).Match(&Node{}) {
		t.Fatal("zero Expr should match")
	}
}

func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type =~ t2.*",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:stack == prod and not(attribute:role exists)",
		"task:group == service:web",
		"ec2InstanceId in ['i-1','i-2']",
		"(attribute:a == b || attribute:c !exists) && !(runningTasksCount > 3)",
		"agentVersion < 1.14.5 or registeredAt >= 2018-06-18T22:28:28+00:00",
		"attribute:a !in [\"x y\", z]",
		"attribute:a =~ '(['",
		"((((",
		"!",
	} {
		f.Add(s)
	}
	node := &Node{ID: "n", InstanceID: "i-1", RunningTasks: 3, AgentVersion: "1.2.3",
		Attributes: map[string]string{"a": "b", "ecs.instance-type": "t2.small"}, Groups: map[string]int{"service:web": 1}}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpression(s)
		if err != nil {
			var ee *ExprError
			if !errors.As(err, &ee) || ee.Pos < 0 || ee.Pos > len(s) {
				t.Fatalf("error %v (%T) for %q", err, err, s)
			}
			return
		}
		e.Match(node)
		e.Match(&Node{})
	})
}
