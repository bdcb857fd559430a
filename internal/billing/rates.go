package billing

import "strings"

// Rates are the prices berth charges, in USD, all in this one place. The
// defaults are AWS's us-east-1 list prices for Fargate on Linux.
type Rates struct {
	// Per vCPU-hour and per GB-hour of memory, by capacity and architecture.
	X86, ARM, SpotX86, SpotARM ComputeRate
	// EphemeralGBHour is per GB-hour of ephemeral storage above
	// FreeEphemeralGB (the same for every capacity and architecture).
	EphemeralGBHour float64
	FreeEphemeralGB int
	// UsageTypePrefix is the region code usage types begin with ("USE1").
	UsageTypePrefix string
}

// ComputeRate is the price of one vCPU-hour and one GB-hour of memory.
type ComputeRate struct {
	VCPUHour, GBHour float64
}

// DefaultRates are us-east-1's Fargate list prices: x86 $0.04048 per
// vCPU-hour and $0.004445 per GB-hour; ARM (Graviton) $0.03238 and
// $0.00356; ephemeral storage $0.000111 per GB-hour above 20 GB. Fargate
// Spot's price floats; berth's default is its usual 70% discount off the
// on-demand price.
var DefaultRates = Rates{
	X86:             ComputeRate{VCPUHour: 0.04048, GBHour: 0.004445},
	ARM:             ComputeRate{VCPUHour: 0.03238, GBHour: 0.00356},
	SpotX86:         ComputeRate{VCPUHour: 0.012144, GBHour: 0.0013335},
	SpotARM:         ComputeRate{VCPUHour: 0.009714, GBHour: 0.001068},
	EphemeralGBHour: 0.000111,
	FreeEphemeralGB: 20,
	UsageTypePrefix: "USE1",
}

// Capacity providers and architectures a task's usage is priced by.
const (
	CapacityFargate     = "FARGATE"
	CapacityFargateSpot = "FARGATE_SPOT"
	ArchX86             = "X86_64"
	ArchARM             = "ARM64"
)

// Kinds of usage line; each has its usage type.
const (
	kindVCPU      = "vCPU"
	kindMemory    = "memory"
	kindEphemeral = "ephemeral"
)

func (r *Rates) compute(capacity, arch string) ComputeRate {
	spot, arm := capacity == CapacityFargateSpot, strings.EqualFold(arch, ArchARM)
	switch {
	case spot && arm:
		return r.SpotARM
	case spot:
		return r.SpotX86
	case arm:
		return r.ARM
	}
	return r.X86
}

// usageType is AWS's name of a kind of Fargate usage, as Cost Explorer's
// USAGE_TYPE dimension shows it: USE1-Fargate-vCPU-Hours:perCPU,
// USE1-Fargate-GB-Hours, USE1-Fargate-EphemeralStorage-GB-Hours, with
// "SpotUsage-" before "Fargate" on Spot and "-ARM" after it on Graviton.
func (r *Rates) usageType(kind, capacity, arch string) string {
	fargate := "Fargate"
	if capacity == CapacityFargateSpot {
		fargate = "SpotUsage-Fargate"
	}
	if strings.EqualFold(arch, ArchARM) {
		fargate += "-ARM"
	}
	switch kind {
	case kindVCPU:
		return r.UsageTypePrefix + "-" + fargate + "-vCPU-Hours:perCPU"
	case kindMemory:
		return r.UsageTypePrefix + "-" + fargate + "-GB-Hours"
	}
	return r.UsageTypePrefix + "-" + fargate + "-EphemeralStorage-GB-Hours"
}

// VCPUUsageTypes are the usage types of vCPU time, on every capacity and
// architecture; MemoryUsageTypes those of memory.
func (r *Rates) VCPUUsageTypes() []string   { return r.usageTypes(kindVCPU) }
func (r *Rates) MemoryUsageTypes() []string { return r.usageTypes(kindMemory) }

func (r *Rates) usageTypes(kind string) []string {
	var out []string
	for _, c := range []string{CapacityFargate, CapacityFargateSpot} {
		for _, a := range []string{ArchX86, ArchARM} {
			out = append(out, r.usageType(kind, c, a))
		}
	}
	return out
}
