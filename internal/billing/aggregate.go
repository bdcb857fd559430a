package billing

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// ServiceName is the SERVICE dimension of ECS usage, as Cost Explorer names it.
const ServiceName = "Amazon Elastic Container Service"

// Granularities of Cost Explorer.
const (
	granHourly  = "HOURLY"
	granDaily   = "DAILY"
	granMonthly = "MONTHLY"
)

// period is one bucket of a result: [Start, End).
type period struct{ Start, End time.Time }

// periods cuts [start, end) into hours, days or months (UTC); the first and
// last are clipped to the range, as Cost Explorer clips them.
func periods(start, end time.Time, gran string) []period {
	var out []period
	for cur := start; cur.Before(end); {
		var next time.Time
		switch gran {
		case granHourly:
			next = cur.Truncate(time.Hour).Add(time.Hour)
		case granDaily:
			next = time.Date(cur.Year(), cur.Month(), cur.Day()+1, 0, 0, 0, 0, time.UTC)
		default:
			next = time.Date(cur.Year(), cur.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		}
		if next.After(end) {
			next = end
		}
		out = append(out, period{cur, next})
		cur = next
	}
	return out
}

// share is the part of a task's usage that falls in [from, to): its run
// [Start, End) split pro rata by time (the billed minimum and the rounding
// are spread over the run the same way). A run of no length lies wholly at
// its start.
func (u *Usage) share(from, to time.Time) float64 {
	run := u.End.Sub(u.Start)
	if run <= 0 {
		if !u.Start.Before(from) && u.Start.Before(to) {
			return 1
		}
		return 0
	}
	lo, hi := u.Start, u.End
	if from.After(lo) {
		lo = from
	}
	if to.Before(hi) {
		hi = to
	}
	if !hi.After(lo) {
		return 0
	}
	return float64(hi.Sub(lo)) / float64(run)
}

// item is one usage line of one task: what filters and groups look at.
type item struct {
	u *Usage
	l *Line
}

// dimension is the value of a Cost Explorer dimension for an item; ok is
// false for a dimension berth does not know.
func (it item) dimension(key string) (string, bool) {
	switch key {
	case "SERVICE":
		return ServiceName, true
	case "USAGE_TYPE":
		return it.l.UsageType, true
	case "REGION":
		return it.u.Region, true
	case "LINKED_ACCOUNT":
		return it.u.Account, true
	case "PURCHASE_TYPE":
		if it.u.Capacity == CapacityFargateSpot {
			return "Spot", true
		}
		return "On Demand Instances", true
	}
	return "", false
}

// supportedDimensions are the dimensions filters and groups may name.
var supportedDimensions = map[string]bool{"SERVICE": true, "USAGE_TYPE": true, "REGION": true, "LINKED_ACCOUNT": true, "PURCHASE_TYPE": true}

// groupKeys are an item's keys under the group definitions: a dimension's
// value, or "KEY$value" for a tag ("KEY$" when the task has no such tag).
func (it item) groupKeys(groups []groupDefinition) []string {
	keys := make([]string, len(groups))
	for i, g := range groups {
		if g.Type == "TAG" {
			keys[i] = g.Key + "$" + it.u.Tags[g.Key]
			continue
		}
		keys[i], _ = it.dimension(g.Key)
	}
	return keys
}

// sums are the metrics of a set of items.
type sums struct{ cost, quantity float64 }

// aggregate sums the items of every period, by group (one group "" without
// group definitions).
func aggregate(usage []Usage, ps []period, groups []groupDefinition, filter *expression) []map[string]*sums {
	out := make([]map[string]*sums, len(ps))
	for i := range out {
		out[i] = map[string]*sums{}
	}
	for ui := range usage {
		u := &usage[ui]
		for li := range u.Lines {
			it := item{u, &u.Lines[li]}
			if filter != nil && !filter.match(it) {
				continue
			}
			key := strings.Join(it.groupKeys(groups), "\x00")
			for pi, p := range ps {
				f := u.share(p.Start, p.End)
				if f == 0 {
					continue
				}
				s := out[pi][key]
				if s == nil {
					s = &sums{}
					out[pi][key] = s
				}
				s.cost += it.l.Cost * f
				s.quantity += it.l.Quantity * f
			}
		}
	}
	return out
}

// metricValues renders the asked-for metrics of sums as Cost Explorer does:
// every cost metric the same (berth has no discounts, credits nor
// reservations), amounts as decimal strings.
func metricValues(s sums, names []string) map[string]metricValue {
	out := make(map[string]metricValue, len(names))
	for _, n := range names {
		switch n {
		case "UsageQuantity":
			out[n] = metricValue{Amount: amount(s.quantity), Unit: "N/A"}
		case "NormalizedUsageAmount":
			out[n] = metricValue{Amount: "0", Unit: "N/A"}
		default:
			out[n] = metricValue{Amount: amount(s.cost), Unit: "USD"}
		}
	}
	return out
}

// amount writes v with up to ten decimals and no trailing zeros.
func amount(v float64) string {
	s := strconv.FormatFloat(v, 'f', 10, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

// sortedKeys returns the group keys of a period in order.
func sortedKeys(m map[string]*sums) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
