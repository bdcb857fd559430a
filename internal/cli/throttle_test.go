package cli

import (
	"testing"

	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/throttle"
)

func TestThrottleFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		{name: "default", args: nil, want: "ecs:RunTask=20/20,launch=20/100"},
		{name: "override one", args: []string{"--throttle", "launch=500/1000"}, want: "ecs:RunTask=20/20,launch=500/1000"},
		{name: "off", args: []string{"--throttle", "off"}, want: "off"},
		{name: "repeated in order", args: []string{"--throttle", "off", "--throttle", "ecs:*=50/100,ecs:RunTask=5"},
			want: "ecs:*=50/100,ecs:RunTask=5/5"},
		{name: "disable one", args: []string{"--throttle=ecs:RunTask=off"}, want: "launch=20/100"},
		{name: "bad", args: []string{"--throttle", "launch=fast"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg throttle.Config
			cmd := &cobra.Command{Use: "x"}
			addThrottleFlag(cmd, &cfg, throttle.AWS(), "AWS's")
			err := cmd.ParseFlags(tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("%v accepted: %s", tt.args, cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.String(); got != tt.want {
				t.Fatalf("%v gave %s, want %s", tt.args, got, tt.want)
			}
		})
	}
	if throttle.AWS().String() != "ecs:RunTask=20/20,launch=20/100" {
		t.Fatal("the flag's default changed AWS()")
	}
}
