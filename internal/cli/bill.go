package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/billing"
)

func (g *globalFlags) ce() *costexplorer.Client { return costexplorer.NewFromConfig(g.awsConfig()) }

// newBillCmd is `berth bill`: what stopped tasks cost, by cluster, service
// and task family, through Cost Explorer's GetCostAndUsage.
func newBillCmd(g *globalFlags) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "bill",
		Short: "What tasks cost, by cluster, service and task family (stopped tasks; running ones count once they stop)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
			end := now.Truncate(24*time.Hour).AddDate(0, 0, 1)
			var err error
			if since != "" {
				if start, err = time.Parse(time.DateOnly, since); err != nil {
					return fmt.Errorf("--since %q: want YYYY-MM-DD", since)
				}
			}
			if until != "" {
				u, err := time.Parse(time.DateOnly, until)
				if err != nil {
					return fmt.Errorf("--until %q: want YYYY-MM-DD", until)
				}
				end = u.AddDate(0, 0, 1) // --until is inclusive
			}
			rows, err := billRows(cmd.Context(), g.ce(), start, end)
			if err != nil {
				return err
			}
			return writeBillTable(os.Stdout, rows)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "first day, YYYY-MM-DD (default: the first of this month)")
	cmd.Flags().StringVar(&until, "until", "", "last day, inclusive, YYYY-MM-DD (default: today)")
	return cmd
}

// billRow is one cluster, service and family.
type billRow struct {
	cluster, service, family string
	vcpuHours, gbHours, cost float64
}

// billRows asks Cost Explorer for the clusters (grouped by the cluster
// tag), then for each cluster its cost, vCPU-hours and GB-hours grouped by
// service and family tags (a query groups by at most two keys).
func billRows(ctx context.Context, c *costexplorer.Client, start, end time.Time) ([]billRow, error) {
	period := &types.DateInterval{Start: aws.String(start.Format(time.DateOnly)), End: aws.String(end.Format(time.DateOnly))}
	ecsOnly := types.Expression{Dimensions: &types.DimensionValues{Key: types.DimensionService, Values: []string{billing.ServiceName}}}
	clusters, err := costGroups(ctx, c, &costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityMonthly,
		Metrics: []string{"UnblendedCost"}, Filter: &ecsOnly,
		GroupBy: []types.GroupDefinition{{Type: types.GroupDefinitionTypeTag, Key: aws.String(billing.TagCluster)}}})
	if err != nil {
		return nil, err
	}
	byService := []types.GroupDefinition{{Type: types.GroupDefinitionTypeTag, Key: aws.String(billing.TagService)},
		{Type: types.GroupDefinitionTypeTag, Key: aws.String(billing.TagFamily)}}
	var rows []billRow
	for key := range clusters {
		cluster := tagValue(key)
		inCluster := types.Expression{Tags: &types.TagValues{Key: aws.String(billing.TagCluster), Values: []string{cluster}}}
		ask := func(metric string, usageTypes []string) (map[string]float64, error) {
			filter := types.Expression{And: []types.Expression{ecsOnly, inCluster}}
			if usageTypes != nil {
				filter.And = append(filter.And, types.Expression{Dimensions: &types.DimensionValues{Key: types.DimensionUsageType, Values: usageTypes}})
			}
			return costGroups(ctx, c, &costexplorer.GetCostAndUsageInput{TimePeriod: period, Granularity: types.GranularityMonthly,
				Metrics: []string{metric}, Filter: &filter, GroupBy: byService})
		}
		cost, err := ask("UnblendedCost", nil)
		if err != nil {
			return nil, err
		}
		vcpu, err := ask("UsageQuantity", billing.DefaultRates.VCPUUsageTypes())
		if err != nil {
			return nil, err
		}
		gb, err := ask("UsageQuantity", billing.DefaultRates.MemoryUsageTypes())
		if err != nil {
			return nil, err
		}
		for k, v := range cost {
			service, family, _ := strings.Cut(k, "\x00")
			rows = append(rows, billRow{cluster: cluster, service: tagValue(service), family: tagValue(family),
				cost: v, vcpuHours: vcpu[k], gbHours: gb[k]})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.cluster != b.cluster {
			return a.cluster < b.cluster
		}
		if a.service != b.service {
			return a.service < b.service
		}
		return a.family < b.family
	})
	return rows, nil
}

// costGroups sums one metric of each group over the periods of the answer,
// keyed by the group's keys joined with NUL.
func costGroups(ctx context.Context, c *costexplorer.Client, in *costexplorer.GetCostAndUsageInput) (map[string]float64, error) {
	out := map[string]float64{}
	metric := in.Metrics[0]
	for {
		resp, err := c.GetCostAndUsage(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("get cost and usage: %w", err)
		}
		for _, r := range resp.ResultsByTime {
			for _, g := range r.Groups {
				v, err := strconv.ParseFloat(aws.ToString(g.Metrics[metric].Amount), 64)
				if err != nil {
					return nil, fmt.Errorf("get cost and usage: amount %q: %w", aws.ToString(g.Metrics[metric].Amount), err)
				}
				out[strings.Join(g.Keys, "\x00")] += v
			}
		}
		if aws.ToString(resp.NextPageToken) == "" {
			return out, nil
		}
		in.NextPageToken = resp.NextPageToken
	}
}

// tagValue is the value of a tag group key "KEY$value".
func tagValue(key string) string {
	_, v, _ := strings.Cut(key, "$")
	return v
}

func writeBillTable(out io.Writer, rows []billRow) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER\tSERVICE\tFAMILY\tVCPU-HOURS\tGB-HOURS\tCOST (USD)")
	var total billRow
	for _, r := range rows {
		service := r.service
		if service == "" {
			service = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.4f\t%.4f\t%.6f\n", r.cluster, service, r.family, r.vcpuHours, r.gbHours, r.cost)
		total.vcpuHours += r.vcpuHours
		total.gbHours += r.gbHours
		total.cost += r.cost
	}
	fmt.Fprintf(w, "TOTAL\t\t\t%.4f\t%.4f\t%.6f\n", total.vcpuHours, total.gbHours, total.cost)
	return w.Flush()
}
