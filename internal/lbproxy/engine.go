// Package lbproxy is berth's load-balancer data plane: the engine that
// serves ALB (HTTP/1.1 and h2c) and NLB (TCP) listeners, routes requests by
// listener rules, spreads them over target groups and their targets, checks
// the targets' health and drains deregistered targets.
//
// It owns only the data path. It knows nothing of ELBv2's API (internal/elb
// fills its plain config types), of etcd, or of network namespaces: the
// caller injects how to open listener sockets (Options.Listen) and how to
// reach targets (Options.Dial), so the agent can bind the load balancer's
// own address inside a VPC namespace and dial targets from there, while
// tests use loopback.
//
// Life cycle: New, then Apply with the full desired configuration as often
// as it changes (each call reconciles the running listeners and target
// groups without dropping in-flight requests or established connections),
// TargetHealth or Options.OnHealthChange to report target health, and Close.
package lbproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Options configure an Engine. Every field has a usable default.
type Options struct {
	// Dial reaches targets (proxied traffic and health checks); default
	// net.Dialer.DialContext.
	Dial Dialer
	// Listen opens listener sockets; default net.ListenConfig.Listen.
	Listen ListenFunc
	// Logger receives the engine's logs; default slog.Default().
	Logger *slog.Logger
	// IdleTimeout is the default ALB idle timeout (LoadBalancer.IdleTimeout
	// overrides it): a target that sends no response headers within it
	// yields 504. Default 60 s, as ALB.
	IdleTimeout time.Duration
	// ConnectTimeout bounds dialing a target; default 10 s, as ALB (a
	// connect timeout yields 504).
	ConnectTimeout time.Duration
	// MaxIdleConnsPerTarget bounds each target's keep-alive pool;
	// default 64.
	MaxIdleConnsPerTarget int
	// OnHealthChange, if set, is called with a target group's full status
	// list whenever a target of it changes state (registered, healthy,
	// unhealthy, draining, gone). Calls come from one goroutine, in order,
	// coalesced; the callback must not call Apply or Close.
	OnHealthChange func(targetGroupARN string, targets []TargetStatus)
}

// Engine runs load balancers. Its methods are safe for concurrent use.
type Engine struct {
	opts         Options
	log          *slog.Logger
	ctx          context.Context // cancelled by Close: stops everything
	cancel       context.CancelFunc
	wg           sync.WaitGroup // every goroutine the engine starts
	healthClient *http.Client
	proxy        *httputil.ReverseProxy
	bufPool      bufferPool

	applyMu sync.Mutex // serializes Apply and Close
	closed  bool

	mu        sync.RWMutex
	tgs       map[string]*targetGroup
	listeners map[string]*runningListener

	notifyMu sync.Mutex
	dirty    map[string]bool
	notify   chan struct{}
}

// New returns an engine serving nothing; call Apply.
func New(opts Options) *Engine {
	if opts.Dial == nil {
		d := &net.Dialer{}
		opts.Dial = d.DialContext
	}
	if opts.Listen == nil {
		lc := &net.ListenConfig{}
		opts.Listen = lc.Listen
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.MaxIdleConnsPerTarget <= 0 {
		opts.MaxIdleConnsPerTarget = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		opts:      opts,
		log:       opts.Logger.With("component", "lbproxy"),
		ctx:       ctx,
		cancel:    cancel,
		tgs:       map[string]*targetGroup{},
		listeners: map[string]*runningListener{},
		dirty:     map[string]bool{},
		notify:    make(chan struct{}, 1),
	}
	e.healthClient = &http.Client{
		Transport: &http.Transport{DialContext: opts.Dial, DisableKeepAlives: true},
		// A redirect is an answer: its code is what the matcher sees.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.proxy = e.newReverseProxy()
	if opts.OnHealthChange != nil {
		e.wg.Go(e.notifyLoop)
	}
	return e
}

// Apply makes lbs the running configuration. It validates everything and
// opens every new listener socket first; on error nothing has changed.
// Then target groups are updated (new targets start health checks, removed
// ones drain), listeners switch to their new rules atomically (a request
// uses the rules current when it arrived), new listeners start, and removed
// listeners stop accepting and finish their in-flight requests in the
// background. Target groups no longer referenced drain all their targets.
func (e *Engine) Apply(lbs []LoadBalancer) error {
	tgCfgs, err := validate(lbs)
	if err != nil {
		return fmt.Errorf("lbproxy: apply: %w", err)
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if e.closed {
		return errors.New("lbproxy: apply: engine closed")
	}

	// 1. Sockets: keep the ones whose address is unchanged, open the new.
	type plan struct {
		lb   *LoadBalancer
		l    *Listener
		rl   *runningListener // existing, or nil
		keys []string
		open map[string]net.Listener
	}
	var plans []*plan
	var opened []net.Listener
	fail := func(err error) error {
		for _, s := range opened {
			_ = s.Close()
		}
		return fmt.Errorf("lbproxy: apply: %w", err)
	}
	e.mu.RLock()
	old := maps.Clone(e.listeners)
	e.mu.RUnlock()
	for i := range lbs {
		lb := &lbs[i]
		for j := range lb.Listeners {
			l := &lb.Listeners[j]
			p := &plan{lb: lb, l: l, keys: bindKeys(lb, l), open: map[string]net.Listener{}}
			if rl := old[l.ARN]; rl != nil && rl.protocol == l.Protocol {
				p.rl = rl
			}
			for _, k := range p.keys {
				if p.rl != nil && p.rl.hasSocket(k) {
					continue
				}
				s, err := e.opts.Listen(e.ctx, "tcp", k)
				if err != nil {
					return fail(fmt.Errorf("listener %s: listen on %s: %w", l.ARN, k, err))
				}
				opened = append(opened, s)
				p.open[k] = s
			}
			plans = append(plans, p)
		}
	}

	// 2. Target groups.
	e.mu.Lock()
	oldTGs := e.tgs
	newTGs := make(map[string]*targetGroup, len(tgCfgs))
	for arn, cfg := range tgCfgs {
		if tg := oldTGs[arn]; tg != nil {
			tg.update(*cfg)
			newTGs[arn] = tg
		} else {
			newTGs[arn] = newTargetGroup(e, *cfg)
		}
	}
	e.tgs = newTGs
	e.mu.Unlock()

	// 3. Listeners: new rules, new sockets, then retire what is gone.
	newLs := map[string]*runningListener{}
	for _, p := range plans {
		rt := e.compileRoute(p.lb, p.l, newTGs)
		rl := p.rl
		if rl == nil {
			rl = e.newListener(p.lb, p.l)
		}
		rl.route.Store(rt)
		rl.reconcileSockets(p.keys, p.open)
		newLs[p.l.ARN] = rl
	}
	e.mu.Lock()
	e.listeners = newLs
	e.mu.Unlock()
	for arn, rl := range old {
		if newLs[arn] != rl {
			e.log.Info("listener removed", "listener", arn)
			rl.stop()
		}
	}
	for arn, tg := range oldTGs {
		if newTGs[arn] == nil {
			e.log.Info("target group removed, draining its targets", "targetGroup", arn)
			tg.retire()
		}
	}
	return nil
}

// bindKeys are the "ADDR:PORT" sockets of a listener.
func bindKeys(lb *LoadBalancer, l *Listener) []string {
	addrs := lb.Addresses
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1"}
	}
	keys := make([]string, 0, len(addrs))
	for _, a := range addrs {
		keys = append(keys, net.JoinHostPort(a, strconv.Itoa(l.Port)))
	}
	return keys
}

// ListenerAddrs returns the addresses a running listener is bound to (useful
// with port 0), or nil if the listener is not running.
func (e *Engine) ListenerAddrs(listenerARN string) []net.Addr {
	e.mu.RLock()
	rl := e.listeners[listenerARN]
	e.mu.RUnlock()
	if rl == nil {
		return nil
	}
	return rl.addrs()
}

// TargetHealth reports every target of every running target group,
// draining targets included, sorted by ID and port.
func (e *Engine) TargetHealth() map[string][]TargetStatus {
	e.mu.RLock()
	tgs := slices.Collect(maps.Values(e.tgs))
	e.mu.RUnlock()
	out := make(map[string][]TargetStatus, len(tgs))
	for _, tg := range tgs {
		out[tg.arn] = tg.statuses()
	}
	return out
}

// Close stops every listener at once, aborts in-flight requests and
// connections, stops health checks and waits for every goroutine.
func (e *Engine) Close() error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.mu.Lock()
	ls := e.listeners
	tgs := e.tgs
	e.listeners = map[string]*runningListener{}
	e.mu.Unlock()
	for _, rl := range ls {
		rl.close()
	}
	e.cancel()
	e.wg.Wait()
	for _, tg := range tgs {
		tg.mu.Lock()
		for _, t := range tg.order {
			if t.transport != nil {
				t.transport.CloseIdleConnections()
				t.pool.close()
			}
		}
		tg.mu.Unlock()
	}
	return nil
}

// healthChanged queues a target group for OnHealthChange.
func (e *Engine) healthChanged(tgARN string) {
	if e.opts.OnHealthChange == nil {
		return
	}
	e.notifyMu.Lock()
	e.dirty[tgARN] = true
	e.notifyMu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

func (e *Engine) notifyLoop() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.notify:
		}
		e.notifyMu.Lock()
		dirty := e.dirty
		e.dirty = map[string]bool{}
		e.notifyMu.Unlock()
		for _, arn := range slices.Sorted(maps.Keys(dirty)) {
			e.mu.RLock()
			tg := e.tgs[arn]
			e.mu.RUnlock()
			var st []TargetStatus
			if tg != nil {
				st = tg.statuses()
			}
			e.opts.OnHealthChange(arn, st)
		}
	}
}
