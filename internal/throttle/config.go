package throttle

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Bucket names. A call bucket is "SERVICE:OPERATION" (the signing name and
// the operation, "ecs:RunTask"); "SERVICE:*" is the limit of each operation
// of the service not named on its own (each operation still has its own
// bucket). Launches is the bucket Fargate task launches draw from, one
// token per task.
const (
	Launches = "launch"
	wildcard = "*"
)

// AWS's documented quotas, per account and Region:
//
//   - Fargate task launches: bucket 100, refill 20 a second ("AWS Fargate
//     throttling quotas", Amazon ECS Developer Guide; On-Demand and Spot
//     have a bucket each there, berth has one for both).
//   - RunTask: 20 calls a second, burst and sustained alike (same page,
//     "Throttling the RunTask API in Fargate"); each call launches up to 10.
//
// The ECS API reference's "Request throttling for the Amazon ECS API" has
// buckets for classes of the other operations (its example: cluster read
// actions such as DescribeClusters have a bucket of 50); add them with a
// spec ("ecs:DescribeClusters=20/50") where a client's behaviour under them
// matters.
var (
	AWSLaunches = Limit{Rate: 20, Burst: 100}
	AWSRunTask  = Limit{Rate: 20, Burst: 20}
)

// Config maps bucket names to their limits. A name absent (or with an
// unlimited Limit) is not limited.
type Config map[string]Limit

// AWS is the configuration `berth server` starts with: AWS's numbers.
func AWS() Config {
	return Config{Launches: AWSLaunches, "ecs:RunTask": AWSRunTask}
}

// Dev is the configuration `berth dev` starts with: the same buckets as
// AWS, 50 times larger, so a developer's loop is never slowed while a
// client that hammers the API still sees ThrottlingException eventually.
func Dev() Config {
	return Config{Launches: {Rate: 1000, Burst: 5000}, "ecs:RunTask": {Rate: 1000, Burst: 1000}}
}

// maxBurst bounds a burst: beyond it a bucket is unlimited in all but name.
const maxBurst = 1 << 30

// Apply returns c with spec applied (c itself is not changed). A spec is a
// comma-separated list of items, applied in order:
//
//	off                 no limits at all (clears what came before)
//	NAME=off | NAME=0   NAME is not limited
//	NAME=RATE           RATE tokens a second, burst RATE (rounded up)
//	NAME=RATE/BURST     RATE tokens a second, burst BURST
//
// NAME is "launch" or "SERVICE:OPERATION" or "SERVICE:*" (for instance
// "ecs:RunTask", "ec2:*"). An empty spec changes nothing.
func (c Config) Apply(spec string) (Config, error) {
	out := make(Config, len(c))
	for k, v := range c {
		out[k] = v
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.EqualFold(item, "off") {
			clear(out)
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok {
			return nil, fmt.Errorf("throttle %q: want NAME=RATE[/BURST], NAME=off or off", item)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("throttle %q: %w", item, err)
		}
		lim, err := parseLimit(val)
		if err != nil {
			return nil, fmt.Errorf("throttle %q: %w", item, err)
		}
		if lim.Unlimited() {
			delete(out, name)
			continue
		}
		out[name] = lim
	}
	return out, nil
}

func checkName(name string) error {
	if name == Launches {
		return nil
	}
	svc, op, ok := strings.Cut(name, ":")
	if !ok || svc == "" || op == "" {
		return fmt.Errorf("name %q: want %q, SERVICE:OPERATION or SERVICE:*", name, Launches)
	}
	for _, part := range []string{svc, op} {
		if part == wildcard {
			continue
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("name %q: unexpected %q", name, r)
			}
		}
	}
	if svc == wildcard {
		return fmt.Errorf("name %q: the service cannot be *", name)
	}
	return nil
}

func parseLimit(val string) (Limit, error) {
	if strings.EqualFold(val, "off") {
		return Limit{}, nil
	}
	rs, bs, hasBurst := strings.Cut(val, "/")
	r, err := strconv.ParseFloat(rs, 64)
	if err != nil || math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return Limit{}, fmt.Errorf("rate %q: want a number of tokens a second >= 0", rs)
	}
	if r == 0 {
		return Limit{}, nil
	}
	if r > maxBurst {
		return Limit{}, fmt.Errorf("rate %q: at most %d", rs, maxBurst)
	}
	b := int(math.Ceil(r))
	if hasBurst {
		n, err := strconv.Atoi(bs)
		if err != nil || n < 1 || n > maxBurst {
			return Limit{}, fmt.Errorf("burst %q: want a whole number of tokens from 1 to %d", bs, maxBurst)
		}
		b = n
	}
	return Limit{Rate: r, Burst: b}, nil
}

// String is c as a spec Apply reads back ("off" when c limits nothing).
func (c Config) String() string {
	names := make([]string, 0, len(c))
	for k, v := range c {
		if !v.Unlimited() {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return "off"
	}
	sort.Strings(names)
	for i, k := range names {
		v := c[k]
		names[i] = k + "=" + strconv.FormatFloat(v.Rate, 'g', -1, 64) + "/" + strconv.Itoa(v.Burst)
	}
	return strings.Join(names, ",")
}

// callLimit is the limit of an operation: its own, else its service's
// wildcard, else none.
func (c Config) callLimit(service, operation string) Limit {
	if l, ok := c[service+":"+operation]; ok {
		return l
	}
	return c[service+":"+wildcard]
}

// Policy applies a Config with a Limiter: the router asks it about calls
// (protocol.CallLimiter) and ECS about task launches (ecs.LaunchLimiter).
// Buckets are per account and Region, as AWS's are.
type Policy struct {
	cfg Config
	lim *Limiter
}

// NewPolicy returns a Policy of cfg over lim (nil: a Limiter with the
// default bound). cfg is copied.
func NewPolicy(cfg Config, lim *Limiter) *Policy {
	if lim == nil {
		lim = NewLimiter(0, nil)
	}
	own, _ := cfg.Apply("")
	return &Policy{cfg: own, lim: lim}
}

// Config is a copy of the policy's configuration.
func (p *Policy) Config() Config {
	c, _ := p.cfg.Apply("")
	return c
}

func scopeKey(account, region string) string { return account + "/" + region }

// AllowCall takes one token of the operation's bucket and reports whether
// the call may go on.
func (p *Policy) AllowCall(account, region, service, operation string) bool {
	lim := p.cfg.callLimit(service, operation)
	if lim.Unlimited() {
		return true
	}
	return p.lim.Allow(scopeKey(account, region), service+":"+operation, lim, 1)
}

// TakeLaunches takes n launch tokens, all or none, and reports whether it
// did.
func (p *Policy) TakeLaunches(account, region string, n int) bool {
	return p.lim.Allow(scopeKey(account, region), Launches, p.cfg[Launches], n)
}

// TakeLaunchesUpTo takes as many launch tokens as there are, up to n, and
// returns how many.
func (p *Policy) TakeLaunchesUpTo(account, region string, n int) int {
	return p.lim.TakeUpTo(scopeKey(account, region), Launches, p.cfg[Launches], n)
}
