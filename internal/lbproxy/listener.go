package lbproxy

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// route is a listener's compiled configuration, swapped atomically by Apply.
type route struct {
	lbARN       string
	idleTimeout time.Duration
	rules       []compiledRule // by ascending priority
	defaults    *compiledAction
}

type compiledRule struct {
	arn      string
	priority int
	conds    []matcher
	action   *compiledAction
}

// compiledAction is the first action of an action list, resolved.
type compiledAction struct {
	typ      string
	tgs      []*targetGroup
	weights  []int
	total    int
	fixed    *FixedResponse
	fixedSC  int
	redirect *Redirect
}

// pickTG chooses a target group by weight; n is a random or flow-hash
// number. A lone group, or groups all of weight 0, take the first.
func (a *compiledAction) pickTG(n uint64) *targetGroup {
	if len(a.tgs) == 1 || a.total == 0 {
		return a.tgs[0]
	}
	x := int(n % uint64(a.total))
	for i, w := range a.weights {
		if x < w {
			return a.tgs[i]
		}
		x -= w
	}
	return a.tgs[len(a.tgs)-1]
}

func (e *Engine) compileRoute(lb *LoadBalancer, l *Listener, tgs map[string]*targetGroup) *route {
	rt := &route{lbARN: lb.ARN, idleTimeout: lb.IdleTimeout, defaults: compileAction(l.DefaultActions, tgs)}
	if rt.idleTimeout <= 0 {
		rt.idleTimeout = e.opts.IdleTimeout
	}
	for _, r := range l.Rules {
		conds, _ := compileConditions(r.Conditions) // validated by Apply
		rt.rules = append(rt.rules, compiledRule{arn: r.ARN, priority: r.Priority, conds: conds, action: compileAction(r.Actions, tgs)})
	}
	sort.SliceStable(rt.rules, func(i, j int) bool { return rt.rules[i].priority < rt.rules[j].priority })
	return rt
}

func compileAction(acts []Action, tgs map[string]*targetGroup) *compiledAction {
	a := acts[0] // validated: not empty
	ca := &compiledAction{typ: a.Type, fixed: a.FixedResponse, redirect: a.Redirect}
	if a.Forward != nil && a.Type == ActionForward {
		for _, w := range a.Forward.TargetGroups {
			ca.tgs = append(ca.tgs, tgs[w.ARN])
			ca.weights = append(ca.weights, w.Weight)
			ca.total += w.Weight
		}
	}
	if a.FixedResponse != nil {
		ca.fixedSC, _ = strconv.Atoi(a.FixedResponse.StatusCode)
	}
	return ca
}

// runningListener is one listener: its sockets and, for HTTP, its server.
type runningListener struct {
	e        *Engine
	arn      string
	protocol string
	route    atomic.Pointer[route]
	srv      *http.Server // HTTP listeners

	mu      sync.Mutex
	sockets map[string]net.Listener
	// upgraded tracks h2c-upgraded connections, which the http.Server no
	// longer owns.
	upgraded map[net.Conn]struct{}
	stopped  bool
}

func (e *Engine) newListener(lb *LoadBalancer, l *Listener) *runningListener {
	rl := &runningListener{e: e, arn: l.ARN, protocol: l.Protocol, sockets: map[string]net.Listener{}, upgraded: map[net.Conn]struct{}{}}
	if l.Protocol == ProtocolHTTP {
		idle := lb.IdleTimeout
		if idle <= 0 {
			idle = e.opts.IdleTimeout
		}
		rl.srv = &http.Server{
			Handler:           rl,
			IdleTimeout:       idle,
			ReadHeaderTimeout: idle,
			ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return e.ctx },
			HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 128},
		}
		rl.srv.Protocols = new(http.Protocols)
		rl.srv.Protocols.SetHTTP1(true)
		rl.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	e.log.Info("listener started", "loadBalancer", lb.ARN, "listener", l.ARN, "protocol", l.Protocol, "port", l.Port)
	return rl
}

func (rl *runningListener) hasSocket(key string) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.sockets[key] != nil
}

func (rl *runningListener) addrs() []net.Addr {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var out []net.Addr
	for _, k := range slices.Sorted(maps.Keys(rl.sockets)) {
		out = append(out, rl.sockets[k].Addr())
	}
	return out
}

// reconcileSockets starts serving the newly opened sockets and closes the
// ones whose key is no longer wanted (established connections continue).
func (rl *runningListener) reconcileSockets(keys []string, open map[string]net.Listener) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for k, s := range open {
		rl.sockets[k] = s
		if rl.srv != nil {
			rl.e.wg.Go(func() { _ = rl.srv.Serve(s) })
		} else {
			rl.e.wg.Go(func() { rl.acceptLoop(s) })
		}
	}
	for k, s := range rl.sockets {
		if !slices.Contains(keys, k) {
			_ = s.Close()
			delete(rl.sockets, k)
		}
	}
}

// stop stops accepting; in-flight requests and connections finish (HTTP:
// in the background, bounded by Close).
func (rl *runningListener) stop() {
	rl.mu.Lock()
	rl.stopped = true
	for k, s := range rl.sockets {
		_ = s.Close()
		delete(rl.sockets, k)
	}
	rl.mu.Unlock()
	if rl.srv != nil {
		rl.e.wg.Go(func() {
			if err := rl.srv.Shutdown(rl.e.ctx); err != nil {
				_ = rl.srv.Close()
			}
		})
	}
}

// close stops at once, closing every connection.
func (rl *runningListener) close() {
	rl.stop()
	if rl.srv != nil {
		_ = rl.srv.Close()
	}
	rl.mu.Lock()
	for c := range rl.upgraded {
		_ = c.Close()
	}
	rl.mu.Unlock()
}
