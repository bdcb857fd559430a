package scheduler

import (
	"errors"
	"fmt"
)

// ProviderShare is one item of a capacity provider strategy
// (capacityProviderStrategy[]: capacityProvider, base, weight).
type ProviderShare struct {
	Provider string
	Base     int // tasks that, at a minimum, run on this provider
	Weight   int // relative share of the tasks beyond the bases
}

// ECS's limits on a capacity provider strategy.
const (
	MaxProviders = 20
	MaxBase      = 100000
	MaxWeight    = 1000
)

// ValidateProviderStrategy checks a capacity provider strategy as RunTask and
// CreateService do: 1 to 20 distinct providers, base 0–100000, weight
// 0–1000, at most one provider with a base, and, with more than one
// provider, at least one weight above zero.
func ValidateProviderStrategy(items []ProviderShare) error {
	if len(items) == 0 {
		return errors.New("capacity provider strategy is empty")
	}
	if len(items) > MaxProviders {
		return fmt.Errorf("capacity provider strategy may contain at most %d capacity providers", MaxProviders)
	}
	seen := map[string]bool{}
	bases, weighted := 0, 0
	for _, it := range items {
		if it.Provider == "" {
			return errors.New("capacity provider name is empty")
		}
		if seen[it.Provider] {
			return fmt.Errorf("capacity provider %s appears more than once in the strategy", it.Provider)
		}
		seen[it.Provider] = true
		if it.Base < 0 || it.Base > MaxBase {
			return fmt.Errorf("base of capacity provider %s must be between 0 and %d", it.Provider, MaxBase)
		}
		if it.Weight < 0 || it.Weight > MaxWeight {
			return fmt.Errorf("weight of capacity provider %s must be between 0 and %d", it.Provider, MaxWeight)
		}
		if it.Base > 0 {
			bases++
		}
		if it.Weight > 0 {
			weighted++
		}
	}
	if bases > 1 {
		return errors.New("only one capacity provider in a strategy can have a base")
	}
	if len(items) > 1 && weighted == 0 {
		return errors.New("at least one capacity provider in a strategy must have a weight greater than zero")
	}
	return nil
}

// SplitByProviders assigns n new tasks to the providers of a capacity
// provider strategy and returns the provider of each, in launch order.
// running counts the tasks already on each provider: for a service, its
// tasks (so a scale-out keeps the ratio of the whole service); nil for
// RunTask.
//
// As ECS documents: the base is satisfied first ("how many tasks, at a
// minimum, to run on the specified capacity provider"); the tasks beyond the
// bases are then shared by weight ("for every one task that's run using
// capacityProviderA, four tasks would use capacityProviderB"), and a provider
// with weight 0 gets none of them. Each task goes to the provider whose
// share beyond its base would be the smallest relative to its weight after
// taking it, (beyond+1)/weight, the first in strategy order on a tie, so
// weights 1:4 give B B B A B and 1:1 gives A B A B. A single provider takes
// every task whatever its weight. ECS does not document the order within
// one call; the totals are what it promises.
func SplitByProviders(items []ProviderShare, n int, running map[string]int) ([]string, error) {
	if err := ValidateProviderStrategy(items); err != nil {
		return nil, err
	}
	count := make([]int, len(items))
	for i, it := range items {
		count[i] = running[it.Provider]
	}
	out := make([]string, 0, max(n, 0))
	for range n {
		pick := -1
		for i, it := range items {
			if count[i] < it.Base {
				pick = i
				break
			}
		}
		if pick < 0 && len(items) == 1 {
			pick = 0
		}
		if pick < 0 {
			for i, it := range items {
				if it.Weight == 0 {
					continue
				}
				if pick < 0 || lessShare(beyond(count[i], it.Base)+1, it.Weight, beyond(count[pick], items[pick].Base)+1, items[pick].Weight) {
					pick = i
				}
			}
		}
		count[pick]++
		out = append(out, items[pick].Provider)
	}
	return out, nil
}

func beyond(count, base int) int { return max(count-base, 0) }

// lessShare reports a/wa < b/wb without division.
func lessShare(a, wa, b, wb int) bool { return int64(a)*int64(wb) < int64(b)*int64(wa) }
