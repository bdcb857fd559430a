package throttle

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		base    Config
		spec    string
		want    Config
		wantErr string
	}{
		{name: "empty keeps", base: AWS(), spec: "", want: AWS()},
		{name: "off clears", base: AWS(), spec: "off", want: Config{}},
		{name: "rate and burst", base: Config{}, spec: "ecs:RunTask=5/1", want: Config{"ecs:RunTask": {5, 1}}},
		{name: "rate alone is its burst", base: Config{}, spec: "ec2:*=2.5", want: Config{"ec2:*": {2.5, 3}}},
		{name: "override one", base: AWS(), spec: "launch=500/1000",
			want: Config{Launches: {500, 1000}, "ecs:RunTask": AWSRunTask}},
		{name: "disable one", base: AWS(), spec: " ecs:RunTask=off ", want: Config{Launches: AWSLaunches}},
		{name: "zero disables", base: AWS(), spec: "launch=0", want: Config{"ecs:RunTask": AWSRunTask}},
		{name: "in order", base: AWS(), spec: "off,launch=1/2", want: Config{Launches: {1, 2}}},
		{name: "no value", spec: "launch", wantErr: "NAME=RATE"},
		{name: "bad name", spec: "RunTask=1", wantErr: "SERVICE:OPERATION"},
		{name: "wildcard service", spec: "*:*=1", wantErr: "cannot be *"},
		{name: "odd character", spec: "ecs:Run Task=1", wantErr: "unexpected"},
		{name: "negative rate", spec: "launch=-1", wantErr: "rate"},
		{name: "nan rate", spec: "launch=NaN", wantErr: "rate"},
		{name: "zero burst", spec: "launch=1/0", wantErr: "burst"},
		{name: "huge burst", spec: "launch=1/99999999999", wantErr: "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.base
			if base == nil {
				base = Config{}
			}
			before := base.String()
			got, err := base.Apply(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if base.String() != before {
				t.Fatalf("Apply changed its receiver: %s, was %s", base, before)
			}
		})
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, c := range []Config{AWS(), Dev(), {}, {"ec2:*": {0.5, 1}}} {
		back, err := Config{}.Apply(c.String())
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("%s read back as %s", c, back)
		}
	}
	if got := AWS().String(); got != "ecs:RunTask=20/20,launch=20/100" {
		t.Fatalf("AWS() = %s", got)
	}
}

func TestPolicy(t *testing.T) {
	clk := newClock()
	cfg, err := Config{}.Apply("ecs:RunTask=1/2,ec2:*=1/3,launch=1/10")
	if err != nil {
		t.Fatal(err)
	}
	p := NewPolicy(cfg, NewLimiter(0, clk.Now))
	count := func(account, region, service, op string, n int) int {
		got := 0
		for range n {
			if p.AllowCall(account, region, service, op) {
				got++
			}
		}
		return got
	}
	tests := []struct {
		account, region, service, op string
		want                         int
	}{
		{"1", "us-east-1", "ecs", "RunTask", 2},
		{"1", "us-east-1", "ecs", "RunTask", 0},
		{"1", "eu-west-1", "ecs", "RunTask", 2}, // another Region: another bucket
		{"2", "us-east-1", "ecs", "RunTask", 2}, // another account
		{"1", "us-east-1", "ecs", "ListTasks", 10},
		{"1", "us-east-1", "ec2", "DescribeVpcs", 3},
		{"1", "us-east-1", "ec2", "DescribeSubnets", 3}, // the wildcard's limit, its own bucket
		{"1", "us-east-1", "iam", "GetRole", 10},
	}
	for _, tt := range tests {
		if got := count(tt.account, tt.region, tt.service, tt.op, 10); got != tt.want {
			t.Errorf("%s/%s %s:%s: %d of 10 allowed, want %d", tt.account, tt.region, tt.service, tt.op, got, tt.want)
		}
	}
	if !p.TakeLaunches("1", "us-east-1", 10) || p.TakeLaunches("1", "us-east-1", 1) {
		t.Fatal("launch bucket of 10 did not give exactly 10")
	}
	clk.Advance(3 * time.Second)
	if got := p.TakeLaunchesUpTo("1", "us-east-1", 10); got != 3 {
		t.Fatalf("TakeLaunchesUpTo after 3 s = %d, want 3", got)
	}
	off := NewPolicy(Config{}, nil)
	if !off.TakeLaunches("1", "r", 1000) || off.TakeLaunchesUpTo("1", "r", 1000) != 1000 || count2(off) != 100 {
		t.Fatal("an empty policy limited something")
	}
}

func count2(p *Policy) int {
	got := 0
	for range 100 {
		if p.AllowCall("1", "r", "ecs", "RunTask") {
			got++
		}
	}
	return got
}

// FuzzApply: any spec either fails or yields a config whose String reads
// back to itself, with every limit positive and bounded.
func FuzzApply(f *testing.F) {
	for _, s := range []string{"", "off", "launch=20/100", "ecs:RunTask=20/20,launch=off", "ec2:*=0.5",
		"a:b=1e9/1073741824", "x", "=", "launch=1/", ",,", "OFF,launch=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := AWS().Apply(spec)
		if err != nil {
			return
		}
		for k, v := range c {
			if v.Unlimited() || v.Burst < 1 || v.Burst > maxBurst || checkName(k) != nil {
				t.Fatalf("%q gave %s=%+v", spec, k, v)
			}
		}
		back, err := Config{}.Apply(c.String())
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("%q: %s read back as %v (%v)", spec, c, back, err)
		}
	})
}
