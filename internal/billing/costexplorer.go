package billing

import (
	"context"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// GetCostAndUsage's wire shapes (Cost Explorer's model: PascalCase members).
type dateInterval struct {
	Start string `json:"Start"`
	End   string `json:"End"`
}

type groupDefinition struct {
	Type string `json:"Type"`
	Key  string `json:"Key"`
}

type valuesFilter struct {
	Key          string   `json:"Key"`
	Values       []string `json:"Values"`
	MatchOptions []string `json:"MatchOptions,omitempty"`
}

type expression struct {
	Or             []expression  `json:"Or,omitempty"`
	And            []expression  `json:"And,omitempty"`
	Not            *expression   `json:"Not,omitempty"`
	Dimensions     *valuesFilter `json:"Dimensions,omitempty"`
	Tags           *valuesFilter `json:"Tags,omitempty"`
	CostCategories *valuesFilter `json:"CostCategories,omitempty"`
}

type getCostAndUsageInput struct {
	TimePeriod    *dateInterval     `json:"TimePeriod"`
	Granularity   string            `json:"Granularity"`
	Filter        *expression       `json:"Filter"`
	Metrics       []string          `json:"Metrics"`
	GroupBy       []groupDefinition `json:"GroupBy"`
	NextPageToken string            `json:"NextPageToken"`
}

type metricValue struct {
	Amount string `json:"Amount"`
	Unit   string `json:"Unit"`
}

type group struct {
	Keys    []string               `json:"Keys"`
	Metrics map[string]metricValue `json:"Metrics"`
}

type resultByTime struct {
	TimePeriod dateInterval           `json:"TimePeriod"`
	Total      map[string]metricValue `json:"Total"`
	Groups     []group                `json:"Groups"`
	Estimated  bool                   `json:"Estimated"`
}

type getCostAndUsageOutput struct {
	GroupDefinitions         []groupDefinition `json:"GroupDefinitions,omitempty"`
	ResultsByTime            []resultByTime    `json:"ResultsByTime"`
	DimensionValueAttributes []any             `json:"DimensionValueAttributes"`
}

var validMetrics = map[string]bool{"AmortizedCost": true, "BlendedCost": true, "NetAmortizedCost": true,
	"NetUnblendedCost": true, "NormalizedUsageAmount": true, "UnblendedCost": true, "UsageQuantity": true}

// hourlyWindow is how far back hourly data goes (Cost Explorer: 14 days).
const hourlyWindow = 14 * 24 * time.Hour

// maxPeriods bounds the size of one answer.
const maxPeriods = 5000

func (s *Service) getCostAndUsage(ctx context.Context, body []byte) (any, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return nil, accessDenied()
	}
	var in getCostAndUsageInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	q, err := s.validate(&in)
	if err != nil {
		return nil, err
	}
	usage, err := s.list(ctx, id.AccountID)
	if err != nil {
		return nil, err
	}
	return answer(usage, q, s.now()), nil
}

// query is a validated request.
type query struct {
	start, end  time.Time
	granularity string
	hourlyDates bool // periods are written with hours (HOURLY)
	metrics     []string
	groups      []groupDefinition
	filter      *expression
}

func (s *Service) validate(in *getCostAndUsageInput) (*query, error) {
	if in.TimePeriod == nil {
		return nil, validation("1 validation error detected: Value null at 'timePeriod' failed to satisfy constraint: Member must not be null")
	}
	if len(in.Metrics) == 0 {
		return nil, validation("Metrics is required: choose one or more of AmortizedCost, BlendedCost, NetAmortizedCost, NetUnblendedCost, NormalizedUsageAmount, UnblendedCost, UsageQuantity")
	}
	q := &query{granularity: in.Granularity, metrics: in.Metrics, groups: in.GroupBy, filter: in.Filter}
	switch q.granularity {
	case "":
		q.granularity = granMonthly
	case granDaily, granMonthly, granHourly:
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'granularity' failed to satisfy constraint: Member must satisfy enum value set: [DAILY, MONTHLY, HOURLY]", q.granularity)
	}
	q.hourlyDates = q.granularity == granHourly
	var err error
	if q.start, err = parseDate(in.TimePeriod.Start, q.hourlyDates); err != nil {
		return nil, err
	}
	if q.end, err = parseDate(in.TimePeriod.End, q.hourlyDates); err != nil {
		return nil, err
	}
	if !q.start.Before(q.end) {
		return nil, validation("Start date (and hour) should be before end date (and hour)")
	}
	now := s.now().UTC()
	if q.start.After(now) {
		return nil, dataUnavailable("Data is not available. Please try to adjust the time period. If requesting future data, the start date cannot be later than the current date.")
	}
	if q.hourlyDates && q.start.Before(now.Add(-hourlyWindow).Truncate(time.Hour)) {
		return nil, dataUnavailable("Hourly data is available only for the last 14 days.")
	}
	if n := estimatePeriods(q); n > maxPeriods {
		return nil, validation("The time period asks for %d %s periods; at most %d fit in one answer.", n, strings.ToLower(q.granularity), maxPeriods)
	}
	seen := map[string]bool{}
	for _, m := range q.metrics {
		if !validMetrics[m] {
			return nil, validation("Metrics '%s' is invalid. Valid values are AmortizedCost, BlendedCost, NetAmortizedCost, NetUnblendedCost, NormalizedUsageAmount, UnblendedCost, UsageQuantity", m)
		}
		if seen[m] {
			return nil, validation("Metrics '%s' is duplicated", m)
		}
		seen[m] = true
	}
	if len(q.groups) > 2 {
		return nil, validation("1 validation error detected: Value at 'groupBy' failed to satisfy constraint: Member must have length less than or equal to 2")
	}
	seenGroup := map[groupDefinition]bool{}
	for _, g := range q.groups {
		switch g.Type {
		case "DIMENSION":
			if !supportedDimensions[g.Key] {
				return nil, validation("Group Definition dimension '%s' is invalid. Valid values are SERVICE, USAGE_TYPE, REGION, LINKED_ACCOUNT, PURCHASE_TYPE", g.Key)
			}
		case "TAG":
			if g.Key == "" {
				return nil, validation("Group Definition tag key must not be empty")
			}
		case "COST_CATEGORY":
			return nil, validation("Cost categories are not supported")
		default:
			return nil, validation("1 validation error detected: Value '%s' at 'groupBy.member.type' failed to satisfy constraint: Member must satisfy enum value set: [DIMENSION, TAG, COST_CATEGORY]", g.Type)
		}
		if seenGroup[g] {
			return nil, validation("Group Definition %s %s is duplicated", g.Type, g.Key)
		}
		seenGroup[g] = true
	}
	if q.filter != nil {
		if err := q.filter.validate(); err != nil {
			return nil, err
		}
	}
	// berth answers in one page: any token is not one it gave.
	if in.NextPageToken != "" {
		return nil, invalidToken()
	}
	return q, nil
}

// parseDate reads YYYY-MM-DD, or with hours (HOURLY) YYYY-MM-DDThh:mm:ssZ.
func parseDate(s string, hourly bool) (time.Time, error) {
	if hourly {
		if t, err := time.Parse("2006-01-02T15:04:05Z", s); err == nil {
			return t.UTC(), nil
		}
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, validation("Invalid date '%s': dates are YYYY-MM-DD (YYYY-MM-DDThh:mm:ssZ for HOURLY)", s)
	}
	return t, nil
}

func estimatePeriods(q *query) int {
	d := q.end.Sub(q.start)
	switch q.granularity {
	case granHourly:
		return int(d/time.Hour) + 1
	case granDaily:
		return int(d/(24*time.Hour)) + 1
	}
	return int(d/(28*24*time.Hour)) + 1
}

func (e *expression) validate() error {
	set := 0
	for _, b := range []bool{len(e.Or) > 0, len(e.And) > 0, e.Not != nil, e.Dimensions != nil, e.Tags != nil, e.CostCategories != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return validation("Expression must have exactly one of And, Or, Not, Dimensions, Tags, CostCategories")
	}
	switch {
	case e.CostCategories != nil:
		return validation("Cost categories are not supported")
	case e.Dimensions != nil:
		if !supportedDimensions[e.Dimensions.Key] {
			return validation("Dimension '%s' is invalid. Valid values are SERVICE, USAGE_TYPE, REGION, LINKED_ACCOUNT, PURCHASE_TYPE", e.Dimensions.Key)
		}
		return validateMatch(e.Dimensions, false)
	case e.Tags != nil:
		if e.Tags.Key == "" {
			return validation("Tags expression needs a Key")
		}
		return validateMatch(e.Tags, true)
	case e.Not != nil:
		return e.Not.validate()
	}
	for _, list := range [][]expression{e.And, e.Or} {
		for i := range list {
			if err := list[i].validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateMatch(f *valuesFilter, tag bool) error {
	for _, m := range f.MatchOptions {
		switch {
		case m == "EQUALS", m == "CASE_SENSITIVE":
		case m == "ABSENT" && tag:
		default:
			return validation("MatchOptions '%s' is not supported for this expression", m)
		}
	}
	if len(f.Values) == 0 && !contains(f.MatchOptions, "ABSENT") {
		return validation("Values of %s must not be empty", f.Key)
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (e *expression) match(it item) bool {
	switch {
	case e.Not != nil:
		return !e.Not.match(it)
	case len(e.And) > 0:
		for i := range e.And {
			if !e.And[i].match(it) {
				return false
			}
		}
		return true
	case len(e.Or) > 0:
		for i := range e.Or {
			if e.Or[i].match(it) {
				return true
			}
		}
		return false
	case e.Dimensions != nil:
		v, _ := it.dimension(e.Dimensions.Key)
		return contains(e.Dimensions.Values, v)
	case e.Tags != nil:
		v, has := it.u.Tags[e.Tags.Key]
		if contains(e.Tags.MatchOptions, "ABSENT") && !has {
			return true
		}
		return has && contains(e.Tags.Values, v)
	}
	return false
}

// answer builds the reply: with group definitions, each period's groups
// (and an empty Total), as Cost Explorer does; without, the period's Total.
// A period not over yet at now is Estimated.
func answer(usage []Usage, q *query, now time.Time) *getCostAndUsageOutput {
	ps := periods(q.start, q.end, q.granularity)
	sumsByPeriod := aggregate(usage, ps, q.groups, q.filter)
	out := &getCostAndUsageOutput{GroupDefinitions: q.groups, ResultsByTime: []resultByTime{}, DimensionValueAttributes: []any{}}
	format := time.DateOnly
	if q.hourlyDates {
		format = "2006-01-02T15:04:05Z"
	}
	for i, p := range ps {
		r := resultByTime{TimePeriod: dateInterval{Start: p.Start.Format(format), End: p.End.Format(format)},
			Total: map[string]metricValue{}, Groups: []group{}, Estimated: p.End.After(now)}
		if len(q.groups) == 0 {
			var total sums
			if s := sumsByPeriod[i][""]; s != nil {
				total = *s
			}
			r.Total = metricValues(total, q.metrics)
		} else {
			for _, k := range sortedKeys(sumsByPeriod[i]) {
				r.Groups = append(r.Groups, group{Keys: strings.Split(k, "\x00"), Metrics: metricValues(*sumsByPeriod[i][k], q.metrics)})
			}
		}
		out.ResultsByTime = append(out.ResultsByTime, r)
	}
	return out
}
