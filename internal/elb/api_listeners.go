package elb

import (
	"context"
	"net/url"
	"sort"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateListener, DescribeListeners, ModifyListener, DeleteListener.

const maxListenersPerLB = 50

var (
	albProtocols = []string{"HTTP", "HTTPS"}
	nlbProtocols = []string{"TCP", "UDP", "TLS", "TCP_UDP"}
)

// listenerSettings reads the protocol, port and certificates of a listener
// for lb; for ModifyListener, absent ones keep l's.
func listenerSettings(p url.Values, lb *lbRecord, l *listenerRecord) error {
	if proto := p.Get("Protocol"); proto != "" {
		l.Protocol = proto
	}
	if l.Protocol == "" {
		return errValidation("A listener protocol must be specified")
	}
	allowed := albProtocols
	if lb.Type == typeNetwork {
		allowed = nlbProtocols
	}
	if !oneOf(l.Protocol, allowed...) {
		return errUnsupportedProtocol(l.Protocol, lb.Type)
	}
	if port, ok, err := intParam(p, "Port", 1, 65535, "Port must be between 1 and 65535"); err != nil {
		return err
	} else if ok {
		l.Port = port
	}
	if l.Port == 0 {
		return errValidation("A listener port must be specified")
	}
	certs, err := protocol.QueryMemberStructs(p, "Certificates")
	if err != nil {
		return err
	}
	if certs != nil {
		l.Certificates = nil
		for _, c := range certs {
			if c.Get("CertificateArn") != "" {
				l.Certificates = append(l.Certificates, c.Get("CertificateArn"))
			}
		}
	}
	if pol := p.Get("SslPolicy"); pol != "" {
		l.SslPolicy = pol
	}
	secure := l.Protocol == "HTTPS" || l.Protocol == "TLS"
	if secure && len(l.Certificates) == 0 {
		return apiErr(codeCertificateNotFound, "A certificate must be specified for %s listeners", l.Protocol)
	}
	if !secure {
		l.Certificates, l.SslPolicy = nil, ""
	} else if l.SslPolicy == "" {
		l.SslPolicy = "ELBSecurityPolicy-2016-08"
	}
	return nil
}

func (st *state) portTaken(lbID string, port int, except string) bool {
	for _, o := range st.listeners {
		if o.LBID == lbID && o.Port == port && o.ID != except {
			return true
		}
	}
	return false
}

func (s *Service) createListener(ctx context.Context, sc scope, p url.Values) (any, error) {
	actions, err := parseActions(sc, p, "DefaultActions")
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	var out *listenersResult
	err = s.change(ctx, sc, "create listener", func(st *state, t *txn) error {
		lb, err := st.lbByARN(p.Get("LoadBalancerArn"))
		if err != nil {
			return err
		}
		l := &listenerRecord{ID: newID(), LBID: lb.ID, DefaultActions: actions, DefaultRuleID: newID(), Tags: tags,
			Created: s.cfg.Now().UTC()}
		if err := listenerSettings(p, lb, l); err != nil {
			return err
		}
		if st.portTaken(lb.ID, l.Port, "") {
			return errDuplicateListener()
		}
		n := 0
		for _, o := range st.listeners {
			if o.LBID == lb.ID {
				n++
			}
		}
		if n >= maxListenersPerLB {
			return errTooManyListeners()
		}
		if err := checkActions(st, lb, l.Protocol, actions); err != nil {
			return err
		}
		t.put(sc.listenerKey(l), l)
		st.listeners[l.ID] = l
		out = &listenersResult{Listeners: list[listenerXML]{st.listenerXML(l)}}
		return nil
	})
	return out, err
}

func (st *state) listenerByARN(arn string) (*listenerRecord, error) {
	if arn == "" {
		return nil, errMissing("ListenerArn")
	}
	id, err := st.sc.arnID(arn, arnListener)
	if err != nil {
		return nil, err
	}
	l := st.listeners[id]
	if l == nil || st.lbs[l.LBID] == nil || st.sc.listenerARN(st.lbs[l.LBID], l) != arn {
		return nil, errListenerNotFound()
	}
	return l, nil
}

func (s *Service) describeListeners(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := protocol.QueryMemberList(p, "ListenerArns")
	if err != nil {
		return nil, err
	}
	lbARN := p.Get("LoadBalancerArn")
	if len(arns) > 0 && lbARN != "" {
		return nil, errValidation("Listener ARNs and a load balancer ARN cannot be specified at the same time")
	}
	if len(arns) == 0 && lbARN == "" {
		return nil, errValidation("You must specify either listener ARNs or a load balancer ARN")
	}
	offset, size, err := paging(p)
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	var ls []*listenerRecord
	if lbARN != "" {
		lb, err := st.lbByARN(lbARN)
		if err != nil {
			return nil, err
		}
		for _, l := range st.listeners {
			if l.LBID == lb.ID {
				ls = append(ls, l)
			}
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Port < ls[j].Port })
	} else {
		for _, arn := range dedupe(arns) {
			l, err := st.listenerByARN(arn)
			if err != nil {
				return nil, err
			}
			ls = append(ls, l)
		}
	}
	pg, next := page(ls, offset, size)
	out := &listenersResult{Listeners: list[listenerXML]{}, NextMarker: next}
	for _, l := range pg {
		out.Listeners = append(out.Listeners, st.listenerXML(l))
	}
	return out, nil
}

func (s *Service) modifyListener(ctx context.Context, sc scope, p url.Values) (any, error) {
	var actions []actionRecord
	if els, err := protocol.QueryMemberStructs(p, "DefaultActions"); err != nil {
		return nil, err
	} else if len(els) > 0 {
		if actions, err = parseActions(sc, p, "DefaultActions"); err != nil {
			return nil, err
		}
	}
	var out *listenersResult
	err := s.change(ctx, sc, "modify listener", func(st *state, t *txn) error {
		l, err := st.listenerByARN(p.Get("ListenerArn"))
		if err != nil {
			return err
		}
		lb := st.lbs[l.LBID]
		if err := listenerSettings(p, lb, l); err != nil {
			return err
		}
		if st.portTaken(lb.ID, l.Port, l.ID) {
			return errDuplicateListener()
		}
		if actions != nil {
			l.DefaultActions = actions
		}
		// Every action of the listener must fit its (maybe new) protocol.
		check := append([]actionRecord(nil), l.DefaultActions...)
		for _, r := range st.rules {
			if r.ListenerID == l.ID {
				check = append(check, r.Actions...)
			}
		}
		delete(st.listeners, l.ID) // so that its own groups do not count as another load balancer's
		if err := checkActions(st, lb, l.Protocol, check); err != nil {
			return err
		}
		st.listeners[l.ID] = l
		t.put(sc.listenerKey(l), l)
		out = &listenersResult{Listeners: list[listenerXML]{st.listenerXML(l)}}
		return nil
	})
	return out, err
}

func (s *Service) deleteListener(ctx context.Context, sc scope, p url.Values) (any, error) {
	err := s.change(ctx, sc, "delete listener", func(st *state, t *txn) error {
		l, err := st.listenerByARN(p.Get("ListenerArn"))
		if err != nil {
			return err
		}
		st.deleteListener(t, l)
		return nil
	})
	return nil, err
}
