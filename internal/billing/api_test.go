package billing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/aws/smithy-go"
)

func TestGetCostAndUsageErrors(t *testing.T) {
	e := newEnv(t)
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	nextWeek := time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly)
	period := &types.DateInterval{Start: aws.String(today), End: aws.String(tomorrow)}
	cost := []string{"UnblendedCost"}
	tests := []struct {
		name string
		in   costexplorer.GetCostAndUsageInput
		code string
		msg  string
	}{
		{"bad metric", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityDaily, Metrics: []string{"Cost"}}, "ValidationException", "'Cost' is invalid"},
		{"bad granularity", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: "WEEKLY", Metrics: cost}, "ValidationException", "granularity"},
		{"bad date", costexplorer.GetCostAndUsageInput{TimePeriod: &types.DateInterval{Start: aws.String("yesterday"), End: aws.String(tomorrow)}, Granularity: types.GranularityDaily, Metrics: cost}, "ValidationException", "Invalid date"},
		{"end before start", costexplorer.GetCostAndUsageInput{TimePeriod: &types.DateInterval{Start: aws.String(tomorrow), End: aws.String(today)}, Granularity: types.GranularityDaily, Metrics: cost}, "ValidationException", "before end"},
		{"future", costexplorer.GetCostAndUsageInput{TimePeriod: &types.DateInterval{Start: aws.String(tomorrow), End: aws.String(nextWeek)}, Granularity: types.GranularityDaily, Metrics: cost}, "DataUnavailableException", "not available"},
		{"hourly too old", costexplorer.GetCostAndUsageInput{TimePeriod: &types.DateInterval{Start: aws.String("2020-01-01T00:00:00Z"), End: aws.String("2020-01-02T00:00:00Z")}, Granularity: types.GranularityHourly, Metrics: cost}, "DataUnavailableException", "14 days"},
		{"three groups", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityDaily, Metrics: cost,
			GroupBy: []types.GroupDefinition{{Type: "TAG", Key: aws.String("a")}, {Type: "TAG", Key: aws.String("b")}, {Type: "TAG", Key: aws.String("c")}}}, "ValidationException", "2"},
		{"unknown dimension", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityDaily, Metrics: cost,
			GroupBy: []types.GroupDefinition{{Type: "DIMENSION", Key: aws.String("AZ")}}}, "ValidationException", "'AZ' is invalid"},
		{"filter with two members", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityDaily, Metrics: cost,
			Filter: &types.Expression{Tags: &types.TagValues{Key: aws.String("k"), Values: []string{"v"}},
				Dimensions: &types.DimensionValues{Key: "SERVICE", Values: []string{ServiceName}}}}, "ValidationException", "exactly one"},
		{"foreign page token", costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityDaily, Metrics: cost, NextPageToken: aws.String("x")}, "InvalidNextTokenException", "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ce("a").GetCostAndUsage(context.Background(), &tc.in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.msg) {
				t.Fatalf("error %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// The SDK maps the codes to its typed errors.
	_, err := e.ce("a").GetCostAndUsage(context.Background(), &tests[4].in)
	var du *types.DataUnavailableException
	if !errors.As(err, &du) {
		t.Errorf("future period: %T %v, want *types.DataUnavailableException", err, err)
	}
}

func TestGetCostAndUsageSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	day := time.Now().UTC().AddDate(0, 0, -2).Truncate(24 * time.Hour)
	noon := day.Add(12 * time.Hour)
	for _, task := range []Task{
		e.task("t1", "prod", "service:api", noon, noon.Add(2*time.Second)), // a minute
		e.task("t2", "prod", "family:web", noon, noon.Add(time.Hour)),      // an hour
		e.task("t3", "dev", "family:web", noon, noon.Add(time.Hour)),
	} {
		if _, err := e.s.Record(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	minute := 0.25*60/3600*0.04048 + 0.5*60/3600*0.004445
	hour := 0.25*0.04048 + 0.5*0.004445
	out, err := e.ce("a").GetCostAndUsage(ctx, &costexplorer.GetCostAndUsageInput{
		TimePeriod:  &types.DateInterval{Start: aws.String(day.AddDate(0, 0, -1).Format(time.DateOnly)), End: aws.String(day.AddDate(0, 0, 2).Format(time.DateOnly))},
		Granularity: types.GranularityDaily, Metrics: []string{"UnblendedCost", "UsageQuantity"},
		GroupBy: []types.GroupDefinition{{Type: types.GroupDefinitionTypeTag, Key: aws.String(TagCluster)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ResultsByTime) != 3 || len(out.GroupDefinitions) != 1 {
		t.Fatalf("%d periods, %d group definitions", len(out.ResultsByTime), len(out.GroupDefinitions))
	}
	r := out.ResultsByTime[1]
	if aws.ToString(r.TimePeriod.Start) != day.Format(time.DateOnly) || len(r.Groups) != 2 || r.Estimated {
		t.Fatalf("day of the usage: %+v", r)
	}
	want := map[string]string{"aws:ecs:clusterName$dev": amount(hour), "aws:ecs:clusterName$prod": amount(hour + minute)}
	for _, g := range r.Groups {
		if m := g.Metrics["UnblendedCost"]; aws.ToString(m.Amount) != want[g.Keys[0]] || aws.ToString(m.Unit) != "USD" {
			t.Errorf("group %v: %s %s, want %s USD", g.Keys, aws.ToString(m.Amount), aws.ToString(m.Unit), want[g.Keys[0]])
		}
	}
	if len(out.ResultsByTime[0].Groups) != 0 || len(out.ResultsByTime[2].Groups) != 0 {
		t.Errorf("usage outside its day: %+v", out.ResultsByTime)
	}

	// Without groups: the total; another account sees none of it.
	q := &costexplorer.GetCostAndUsageInput{TimePeriod: &types.DateInterval{Start: aws.String(day.Format(time.DateOnly)), End: aws.String(day.AddDate(0, 0, 1).Format(time.DateOnly))},
		Granularity: types.GranularityMonthly, Metrics: []string{"BlendedCost"},
		Filter: &types.Expression{Dimensions: &types.DimensionValues{Key: types.DimensionService, Values: []string{ServiceName}}}}
	out, err = e.ce("a").GetCostAndUsage(ctx, q)
	if err != nil || len(out.ResultsByTime) != 1 || aws.ToString(out.ResultsByTime[0].Total["BlendedCost"].Amount) != amount(2*hour+minute) {
		t.Fatalf("total: %+v (%v)", out, err)
	}
	out, err = e.ce("b").GetCostAndUsage(ctx, q)
	if err != nil || aws.ToString(out.ResultsByTime[0].Total["BlendedCost"].Amount) != "0" {
		t.Fatalf("another account: %+v (%v)", out, err)
	}
}
