package cli

import (
	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/throttle"
)

// throttleHelp documents --throttle for dev and server; what says what the
// command's default is (pflag prints the default itself).
func throttleHelp(what string) string {
	return "API call and Fargate task launch rate limits per account and Region, token buckets as AWS's: " +
		"a comma-separated list of NAME=RATE/BURST (RATE tokens a second, up to BURST), NAME=RATE (burst RATE), " +
		"NAME=off, or off (no limits); NAME is launch (one token per Fargate task launched, by RunTask or a service) or " +
		"SERVICE:OPERATION (ecs:RunTask, ec2:DescribeVpcs; SERVICE:* for each operation of a service not named). " +
		"Applied over the default, in order; may be repeated. The default is " + what + "."
}

// throttleValue is a pflag.Value applying each spec it is given to cfg.
type throttleValue struct{ cfg *throttle.Config }

func (v throttleValue) String() string {
	if v.cfg == nil {
		return ""
	}
	return v.cfg.String()
}

func (v throttleValue) Set(spec string) error {
	c, err := v.cfg.Apply(spec)
	if err != nil {
		return err
	}
	*v.cfg = c
	return nil
}

func (v throttleValue) Type() string { return "spec" }

// addThrottleFlag adds --throttle to cmd over the default def; what says
// why that default.
func addThrottleFlag(cmd *cobra.Command, cfg *throttle.Config, def throttle.Config, what string) {
	*cfg = def
	cmd.Flags().Var(throttleValue{cfg}, "throttle", throttleHelp(what))
}
