package ecs

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/protocol"
)

// wantErr checks err against an expected ECS error code and message
// fragment; an empty code means no error is expected.
func wantErr(t *testing.T, err error, code, frag string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %s containing %q", code, frag)
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
	}
	if pe.Code != code {
		t.Errorf("code = %s, want %s (message %q)", pe.Code, code, pe.Message)
	}
	if !strings.Contains(pe.Message, frag) {
		t.Errorf("message %q does not contain %q", pe.Message, frag)
	}
}

// fargateTD is a minimal valid Fargate task definition.
func fargateTD() *TaskDefinition {
	return &TaskDefinition{
		Family:                  "web",
		RequiresCompatibilities: []string{"FARGATE"},
		NetworkMode:             "awsvpc",
		Cpu:                     "256",
		Memory:                  "512",
		ContainerDefinitions: []ContainerDefinition{{
			Name:         "app",
			Image:        "nginx:latest",
			PortMappings: []PortMapping{{ContainerPort: new(80)}},
		}},
	}
}

// ec2TD is a minimal valid EC2 (bridge, no task size) task definition.
func ec2TD() *TaskDefinition {
	return &TaskDefinition{
		Family:               "batch",
		ContainerDefinitions: []ContainerDefinition{{Name: "job", Image: "busybox", Memory: new(128)}},
	}
}

// sidecar is a second container to add to fargateTD.
func sidecar(name string) ContainerDefinition {
	return ContainerDefinition{Name: name, Image: "busybox"}
}

func hc(cmd ...string) *HealthCheck { return &HealthCheck{Command: cmd} }

const (
	codeOK = ""
	cli    = codeClient
	inv    = codeInvalidParameter
)

func TestValidateTaskDefinition(t *testing.T) {
	tests := []struct {
		name string
		base func() *TaskDefinition
		mod  func(td *TaskDefinition)
		code string
		frag string
	}{
		// Baselines.
		{"fargate valid", fargateTD, func(*TaskDefinition) {}, codeOK, ""},
		{"ec2 valid", ec2TD, func(*TaskDefinition) {}, codeOK, ""},

		// Family.
		{"family empty", fargateTD, func(td *TaskDefinition) { td.Family = "" }, cli, "Family should not be null or empty"},
		{"family invalid chars", fargateTD, func(td *TaskDefinition) { td.Family = "web.app" }, cli, "Family contains invalid characters"},
		{"family too long", fargateTD, func(td *TaskDefinition) { td.Family = strings.Repeat("a", 256) }, cli, "Family contains invalid characters"},
		{"family 255 with - and _", fargateTD, func(td *TaskDefinition) { td.Family = "A-b_" + strings.Repeat("9", 251) }, codeOK, ""},

		// Container list.
		{"no containers", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions = nil }, cli, "Container list cannot be empty"},
		{"too many containers", ec2TD, func(td *TaskDefinition) {
			for i := range 10 {
				c := td.ContainerDefinitions[0]
				c.Name = "c" + strconv.Itoa(i)
				td.ContainerDefinitions = append(td.ContainerDefinitions, c)
			}
		}, cli, "Too many containers"},
		{"ten containers", ec2TD, func(td *TaskDefinition) {
			for i := range 9 {
				c := td.ContainerDefinitions[0]
				c.Name = "c" + strconv.Itoa(i)
				td.ContainerDefinitions = append(td.ContainerDefinitions, c)
			}
		}, codeOK, ""},

		// Container names and images.
		{"container name empty", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Name = "" }, cli, "Container.name should not be null or empty."},
		{"container name invalid", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Name = "my app" }, cli, "Container.name contains invalid characters"},
		{"container name too long", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Name = strings.Repeat("x", 256) }, cli, "Container.name contains invalid characters"},
		{"container name duplicate", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("app"))
		}, cli, `Duplicate container name: "app"`},
		{"image empty", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Image = "" }, cli, "Container.image should not be null or empty"},

		// Enumerations.
		{"bad compatibility", fargateTD, func(td *TaskDefinition) { td.RequiresCompatibilities = []string{"LAMBDA"} }, cli, `Invalid requiresCompatibilities value "LAMBDA"`},
		{"bad network mode", ec2TD, func(td *TaskDefinition) { td.NetworkMode = "nat" }, cli, `Invalid networkMode "nat"`},
		{"bad pid mode", ec2TD, func(td *TaskDefinition) { td.PidMode = "container" }, cli, `Invalid pidMode "container"`},
		{"bad ipc mode", ec2TD, func(td *TaskDefinition) { td.IpcMode = "shareable" }, cli, `Invalid ipcMode "shareable"`},

		// Fargate task size.
		{"fargate no cpu", fargateTD, func(td *TaskDefinition) { td.Cpu = "" }, cli, "Fargate requires that 'cpu' be defined at the task level"},
		{"fargate no memory", fargateTD, func(td *TaskDefinition) { td.Memory = "" }, cli, "Fargate requires that 'memory' be defined at the task level"},
		{"fargate bad pair", fargateTD, func(td *TaskDefinition) { td.Memory = "4096" }, cli,
			"No Fargate configuration exists for given values: 256 CPU, 4096 memory. Valid memory values for 256 CPU: 512, 1024, 2048."},
		{"fargate bad cpu", fargateTD, func(td *TaskDefinition) { td.Cpu = "300" }, cli, "Valid CPU values: 256, 512, 1024, 2048, 4096, 8192, 16384."},
		{"fargate bad step", fargateTD, func(td *TaskDefinition) { td.Cpu, td.Memory = "16384", "36864" }, cli,
			"Valid memory values for 16384 CPU: 32768 to 122880 in increments of 8192."},
		{"fargate largest", fargateTD, func(td *TaskDefinition) { td.Cpu, td.Memory = "16 vCPU", "120GB" }, codeOK, ""},
		{"fargate 8192 step 4096", fargateTD, func(td *TaskDefinition) { td.Cpu, td.Memory = "8192", "20480" }, codeOK, ""},
		{"fargate 8192 off step", fargateTD, func(td *TaskDefinition) { td.Cpu, td.Memory = "8192", "17408" }, cli, "No Fargate configuration exists"},
		{"fargate string sizes", fargateTD, func(td *TaskDefinition) { td.Cpu, td.Memory = "1 vCPU", "2 GB" }, codeOK, ""},

		// Fargate restrictions.
		{"fargate bridge", fargateTD, func(td *TaskDefinition) { td.NetworkMode = "bridge" }, cli, "Fargate only supports network mode ‘awsvpc’."},
		{"fargate host", fargateTD, func(td *TaskDefinition) { td.NetworkMode = "host" }, cli, "Fargate only supports network mode ‘awsvpc’."},
		{"fargate network unset", fargateTD, func(td *TaskDefinition) { td.NetworkMode = "" }, cli, "Fargate only supports network mode ‘awsvpc’."},
		{"fargate privileged", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Privileged = new(true) }, cli, "do not support privileged containers"},
		{"fargate privileged false", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Privileged = new(false) }, codeOK, ""},
		{"fargate pid host", fargateTD, func(td *TaskDefinition) { td.PidMode = "host" }, cli, "do not support pidMode 'host'"},
		{"fargate pid task", fargateTD, func(td *TaskDefinition) { td.PidMode = "task" }, codeOK, ""},
		{"fargate ipc", fargateTD, func(td *TaskDefinition) { td.IpcMode = "task" }, cli, "do not support ipcMode"},
		{"fargate cap NET_ADMIN", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LinuxParameters = &LinuxParameters{Capabilities: &KernelCapabilities{Add: []string{"NET_ADMIN"}}}
		}, cli, "only support adding the 'SYS_PTRACE' kernel capability"},
		{"fargate cap SYS_PTRACE", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LinuxParameters = &LinuxParameters{Capabilities: &KernelCapabilities{Add: []string{"SYS_PTRACE"}, Drop: []string{"ALL"}}}
		}, codeOK, ""},
		{"ec2 cap NET_ADMIN", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LinuxParameters = &LinuxParameters{Capabilities: &KernelCapabilities{Add: []string{"NET_ADMIN"}}}
		}, codeOK, ""},
		{"fargate stopTimeout 121", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StopTimeout = new(121) }, cli, "stop timeout of at most 120 seconds"},
		{"fargate stopTimeout 120", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StopTimeout = new(120) }, codeOK, ""},
		{"stopTimeout 1", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StopTimeout = new(1) }, cli, "'stopTimeout' must be at least 2 seconds"},
		{"ec2 stopTimeout 300", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StopTimeout = new(300) }, codeOK, ""},
		{"fargate startTimeout 121", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StartTimeout = new(121) }, cli, "start timeout of at most 120 seconds"},
		{"startTimeout 1", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].StartTimeout = new(1) }, cli, "'startTimeout' must be at least 2 seconds"},
		{"awsvpc hostname", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Hostname = "web" }, cli, "'hostname' is not supported when networkMode=awsvpc"},
		{"bridge hostname", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Hostname = "web" }, codeOK, ""},

		// Log drivers.
		{"fargate awslogs", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "awslogs", Options: map[string]string{"awslogs-group": "g"}}
		}, codeOK, ""},
		{"fargate splunk", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "splunk"}
		}, codeOK, ""},
		{"fargate awsfirelens", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "awsfirelens"}
		}, codeOK, ""},
		{"fargate json-file", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "json-file"}
		}, cli,
			`Log driver "json-file" is not supported by the Fargate launch type`},
		{"ec2 json-file", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "json-file"}
		}, codeOK, ""},
		{"ec2 bogus driver", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{LogDriver: "bogus"}
		}, cli, `"bogus" is not a valid log driver`},
		{"empty driver", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].LogConfiguration = &LogConfiguration{} }, cli, "logDriver should not be null or empty"},

		// Essential.
		{"no essential", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Essential = new(false) }, cli, "Task definition doesn't have any essential container"},
		{"one essential by default", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Essential = new(false)
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("log"))
		}, codeOK, ""},

		// Task-level cpu/memory strings.
		{"cpu garbage", ec2TD, func(td *TaskDefinition) { td.Cpu = "lots" }, inv, "Invalid 'cpu' setting for task"},
		{"memory garbage", ec2TD, func(td *TaskDefinition) { td.Memory = "1TB" }, inv, "Invalid 'memory' setting for task"},
		{"cpu fractional units", ec2TD, func(td *TaskDefinition) { td.Cpu = "0.3 vcpu" }, inv, "whole number of CPU units"},
		{"ec2 cpu below minimum", ec2TD, func(td *TaskDefinition) { td.Cpu = "64" }, inv, "between 128 (0.125 vCPU) and 196608"},
		{"ec2 cpu 128", ec2TD, func(td *TaskDefinition) { td.Cpu = ".125 vCPU" }, codeOK, ""},

		// Container resources.
		{"sum cpu over task", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Cpu = 200
			s := sidecar("log")
			s.Cpu = 100
			td.ContainerDefinitions = append(td.ContainerDefinitions, s)
		}, cli, "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'"},
		{"sum cpu equal task", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Cpu = 128
			s := sidecar("log")
			s.Cpu = 128
			td.ContainerDefinitions = append(td.ContainerDefinitions, s)
		}, codeOK, ""},
		{"container cpu over task", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Cpu = 512 }, cli, "'cpu' (512) cannot be greater than the task 'cpu' (256)"},
		{"container cpu negative", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Cpu = -1 }, cli, "'cpu' must be 0 or greater"},
		{"container memory over task", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Memory = new(1024) }, cli,
			"'memory' (1024 MiB) cannot be greater than the task 'memory' (512 MiB)"},
		{"container memory equals task", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Memory = new(512) }, codeOK, ""},
		{"container reservation over task", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].MemoryReservation = new(600) }, cli,
			"'memoryReservation' (600 MiB) cannot be greater than the task 'memory' (512 MiB)"},
		{"sum reservation over task", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].MemoryReservation = new(300)
			s := sidecar("log")
			s.MemoryReservation = new(300)
			td.ContainerDefinitions = append(td.ContainerDefinitions, s)
		}, cli, "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'"},
		{"reservation over memory", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].MemoryReservation = new(256) }, cli,
			"'memory' (128 MiB) must be greater than or equal to 'memoryReservation' (256 MiB)"},
		{"reservation equals memory", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].MemoryReservation = new(128) }, codeOK, ""},
		{"ec2 no memory anywhere", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Memory = nil }, cli,
			"Invalid setting for container 'job'. At least one of 'memory' or 'memoryReservation' must be specified"},
		{"ec2 reservation only", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Memory = nil
			td.ContainerDefinitions[0].MemoryReservation = new(64)
		}, codeOK, ""},
		{"ec2 task memory only", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].Memory = nil
			td.Memory = "1GB"
		}, codeOK, ""},
		{"memory zero", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].Memory = new(0) }, cli, "'memory' must be greater than 0 MiB"},
		{"reservation zero", ec2TD, func(td *TaskDefinition) { td.ContainerDefinitions[0].MemoryReservation = new(0) }, cli, "'memoryReservation' must be greater than 0 MiB"},

		// Port mappings.
		{"awsvpc port mismatch", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].HostPort = new(8080) }, cli,
			"When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
		{"awsvpc port match", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].HostPort = new(80) }, codeOK, ""},
		{"host port mismatch", ec2TD, func(td *TaskDefinition) {
			td.NetworkMode = "host"
			td.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: new(80), HostPort: new(81)}}
		}, cli, "When networkMode=host, the host ports and container ports in port mappings must match."},
		{"bridge port remap", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: new(80), HostPort: new(8080)}}
		}, codeOK, ""},
		{"container port zero", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].ContainerPort = new(0) }, cli, "containerPort 0 must be between 1 and 65535"},
		{"container port too big", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].ContainerPort = new(65536) }, cli, "containerPort 65536 must be between 1 and 65535"},
		{"container port max", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].ContainerPort = new(65535) }, codeOK, ""},
		{"container port missing", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].ContainerPort = nil }, cli, "containerPort must be specified"},
		{"host port negative", ec2TD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: new(80), HostPort: new(-1)}}
		}, cli, "hostPort -1 must be between 0 and 65535"},
		{"protocol sctp", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].Protocol = "sctp" }, cli, `protocol "sctp" must be tcp or udp`},
		{"protocol udp", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].PortMappings[0].Protocol = "udp" }, codeOK, ""},

		// dependsOn.
		{"depends on missing", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "db", Condition: "START"}}
		}, cli, "cannot depend on container 'db' because it does not exist"},
		{"depends on itself", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "app", Condition: "START"}}
		}, cli, "Container 'app' cannot depend on itself"},
		{"depends bad condition", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("init"))
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "init", Condition: "READY"}}
		}, cli, `Invalid dependsOn condition "READY"`},
		{"depends START", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("init"))
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "init", Condition: "START"}}
		}, codeOK, ""},
		{"depends HEALTHY without check", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("db"))
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "db", Condition: "HEALTHY"}}
		}, cli, "A dependency container with HEALTHY condition must have a health check configured"},
		{"depends HEALTHY with check", fargateTD, func(td *TaskDefinition) {
			db := sidecar("db")
			db.HealthCheck = hc("CMD-SHELL", "pg_isready")
			td.ContainerDefinitions = append(td.ContainerDefinitions, db)
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "db", Condition: "HEALTHY"}}
		}, codeOK, ""},
		{"depends SUCCESS on essential", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, sidecar("init"))
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "init", Condition: "SUCCESS"}}
		}, cli, "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
		{"depends COMPLETE on non-essential", fargateTD, func(td *TaskDefinition) {
			init := sidecar("init")
			init.Essential = new(false)
			td.ContainerDefinitions = append(td.ContainerDefinitions, init)
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "init", Condition: "COMPLETE"}}
		}, codeOK, ""},
		{"depends cycle", fargateTD, func(td *TaskDefinition) {
			a, b := sidecar("a"), sidecar("b")
			a.DependsOn = []ContainerDependency{{ContainerName: "b", Condition: "START"}}
			b.DependsOn = []ContainerDependency{{ContainerName: "a", Condition: "START"}}
			td.ContainerDefinitions = append(td.ContainerDefinitions, a, b)
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "a", Condition: "START"}}
		}, cli, "Container dependencies contain a cycle: a -> b -> a"},
		{"depends diamond", fargateTD, func(td *TaskDefinition) {
			a, b, c := sidecar("a"), sidecar("b"), sidecar("c")
			a.DependsOn = []ContainerDependency{{ContainerName: "c", Condition: "START"}}
			b.DependsOn = []ContainerDependency{{ContainerName: "c", Condition: "START"}}
			td.ContainerDefinitions = append(td.ContainerDefinitions, a, b, c)
			td.ContainerDefinitions[0].DependsOn = []ContainerDependency{{ContainerName: "a", Condition: "START"}, {ContainerName: "b", Condition: "START"}}
		}, codeOK, ""},

		// healthCheck.
		{"hc empty command", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck = hc() }, cli, "command should not be null or empty"},
		{"hc bad first element", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck = hc("curl", "localhost") }, cli, "command must start with CMD or CMD-SHELL"},
		{"hc CMD alone", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck = hc("CMD") }, cli, "command CMD needs the command to run after it"},
		{"hc NONE", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck = hc("NONE") }, codeOK, ""},
		{"hc CMD", fargateTD, func(td *TaskDefinition) { td.ContainerDefinitions[0].HealthCheck = hc("CMD", "/bin/check", "-q") }, codeOK, ""},
		{"hc interval low", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: new(4)}
		}, cli, "interval must be between 5 and 300 seconds, not 4"},
		{"hc interval high", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: new(301)}
		}, cli, "interval must be between 5 and 300 seconds"},
		{"hc timeout low", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Timeout: new(1)}
		}, cli, "timeout must be between 2 and 60 seconds"},
		{"hc timeout high", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Timeout: new(61)}
		}, cli, "timeout must be between 2 and 60 seconds"},
		{"hc retries low", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Retries: new(0)}
		}, cli, "retries must be between 1 and 10"},
		{"hc retries high", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, Retries: new(11)}
		}, cli, "retries must be between 1 and 10"},
		{"hc startPeriod high", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, StartPeriod: new(301)}
		}, cli, "startPeriod must be between 0 and 300 seconds"},
		{"hc startPeriod negative", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"}, StartPeriod: new(-1)}
		}, cli, "startPeriod must be between 0 and 300 seconds"},
		{"hc all bounds", fargateTD, func(td *TaskDefinition) {
			td.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "true"},
				Interval: new(300), Timeout: new(60), Retries: new(10), StartPeriod: new(300)}
		}, codeOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := tc.base()
			tc.mod(td)
			wantErr(t, validateTaskDefinition(td), tc.code, tc.frag)
		})
	}
}

func TestValidateTaskDefinitionDefaults(t *testing.T) {
	td := fargateTD()
	td.Cpu, td.Memory = "1 vCPU", "2GB"
	td.ContainerDefinitions[0].HealthCheck = hc("CMD-SHELL", "curl -f http://localhost/")
	td.ContainerDefinitions = append(td.ContainerDefinitions, ContainerDefinition{
		Name: "log", Image: "fluent-bit", Essential: new(false),
		PortMappings: []PortMapping{{ContainerPort: new(24224), Protocol: "udp"}},
	})
	if err := validateTaskDefinition(td); err != nil {
		t.Fatal(err)
	}
	if td.Cpu != "1024" || td.Memory != "2048" {
		t.Errorf("cpu/memory = %q/%q, want 1024/2048", td.Cpu, td.Memory)
	}
	app, log := td.ContainerDefinitions[0], td.ContainerDefinitions[1]
	if app.Essential == nil || !*app.Essential {
		t.Errorf("app essential = %v, want true", app.Essential)
	}
	if log.Essential == nil || *log.Essential {
		t.Errorf("log essential changed to %v", *log.Essential)
	}
	pm := app.PortMappings[0]
	if pm.HostPort == nil || *pm.HostPort != 80 || pm.Protocol != "tcp" {
		t.Errorf("port mapping = %+v (hostPort %v), want hostPort 80, tcp", pm, pm.HostPort)
	}
	if p := log.PortMappings[0]; p.Protocol != "udp" || p.HostPort == nil || *p.HostPort != 24224 {
		t.Errorf("udp mapping = %+v, want udp kept and hostPort 24224", p)
	}
	h := app.HealthCheck
	if *h.Interval != 30 || *h.Timeout != 5 || *h.Retries != 3 {
		t.Errorf("health check defaults = %d/%d/%d, want 30/5/3", *h.Interval, *h.Timeout, *h.Retries)
	}
	if h.StartPeriod != nil {
		t.Errorf("startPeriod = %d, want absent (ECS leaves it unset)", *h.StartPeriod)
	}
	if !slices.Equal(td.Compatibilities, []string{"EC2", "FARGATE"}) {
		t.Errorf("compatibilities = %v, want [EC2 FARGATE]", td.Compatibilities)
	}

	// EC2: bridge by default, hostPort left for dynamic mapping.
	e := ec2TD()
	e.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: new(8080)}}
	e.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD", "true"}, Interval: new(10)}
	if err := validateTaskDefinition(e); err != nil {
		t.Fatal(err)
	}
	if e.NetworkMode != "bridge" {
		t.Errorf("networkMode = %q, want bridge", e.NetworkMode)
	}
	if p := e.ContainerDefinitions[0].PortMappings[0]; p.HostPort != nil || p.Protocol != "tcp" {
		t.Errorf("bridge mapping = %+v, want no hostPort and tcp", p)
	}
	if h := e.ContainerDefinitions[0].HealthCheck; *h.Interval != 10 || *h.Timeout != 5 {
		t.Errorf("explicit interval overwritten: %d/%d", *h.Interval, *h.Timeout)
	}
	if e.Cpu != "" || e.Memory != "" {
		t.Errorf("absent task size became %q/%q", e.Cpu, e.Memory)
	}
	if !slices.Equal(e.Compatibilities, []string{"EXTERNAL", "EC2"}) {
		t.Errorf("compatibilities = %v, want [EXTERNAL EC2]", e.Compatibilities)
	}
}

func TestValidateTaskDefinitionCompatibilities(t *testing.T) {
	tests := []struct {
		name string
		mod  func(td *TaskDefinition)
		want []string
	}{
		{"awsvpc sized, no requirement", func(td *TaskDefinition) { td.RequiresCompatibilities = nil }, []string{"EC2", "FARGATE"}},
		{"requires EC2 only", func(td *TaskDefinition) { td.RequiresCompatibilities = []string{"EC2"} }, []string{"EC2", "FARGATE"}},
		{"awsvpc without task size", func(td *TaskDefinition) {
			td.RequiresCompatibilities, td.Cpu, td.Memory = nil, "", ""
			td.ContainerDefinitions[0].Memory = new(256)
		}, []string{"EC2"}},
		{"awsvpc non-Fargate size", func(td *TaskDefinition) { td.RequiresCompatibilities, td.Memory = nil, "3000" }, []string{"EC2"}},
		{"awsvpc privileged", func(td *TaskDefinition) {
			td.RequiresCompatibilities = nil
			td.ContainerDefinitions[0].Privileged = new(true)
		}, []string{"EC2"}},
		{"awsvpc long stop timeout", func(td *TaskDefinition) {
			td.RequiresCompatibilities = nil
			td.ContainerDefinitions[0].StopTimeout = new(300)
		}, []string{"EC2"}},
		{"bridge", func(td *TaskDefinition) {
			td.RequiresCompatibilities, td.NetworkMode = nil, "bridge"
			td.ContainerDefinitions[0].PortMappings = nil
		}, []string{"EXTERNAL", "EC2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := fargateTD()
			td.Compatibilities = []string{"bogus"} // whatever the client sent is replaced
			tc.mod(td)
			if err := validateTaskDefinition(td); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(td.Compatibilities, tc.want) {
				t.Errorf("compatibilities = %v, want %v", td.Compatibilities, tc.want)
			}
		})
	}
}

func TestFargateSizeOK(t *testing.T) {
	counts := map[int]int{256: 3, 512: 4, 1024: 7, 2048: 13, 4096: 23, 8192: 12, 16384: 12}
	for cpu, n := range counts {
		got := 0
		for mem := 0; mem <= 131072; mem += 512 {
			if fargateSizeOK(cpu, mem) {
				got++
			}
		}
		if got != n {
			t.Errorf("cpu %d: %d valid memory sizes, want %d", cpu, got, n)
		}
	}
	tests := []struct {
		cpu, mem int
		ok       bool
	}{
		{256, 512, true}, {256, 1536, false}, {256, 2048, true}, {256, 3072, false},
		{512, 1024, true}, {512, 4096, true}, {512, 512, false}, {512, 5120, false},
		{1024, 2048, true}, {1024, 8192, true}, {1024, 1024, false}, {1024, 2560, false},
		{2048, 4096, true}, {2048, 16384, true}, {2048, 17408, false},
		{4096, 8192, true}, {4096, 30720, true}, {4096, 31744, false},
		{8192, 16384, true}, {8192, 61440, true}, {8192, 17408, false}, {8192, 65536, false},
		{16384, 32768, true}, {16384, 122880, true}, {16384, 40960, true}, {16384, 36864, false}, {16384, 131072, false},
		{128, 512, false}, {0, 0, false}, {-256, 512, false}, {32768, 65536, false},
	}
	for _, tc := range tests {
		if got := fargateSizeOK(tc.cpu, tc.mem); got != tc.ok {
			t.Errorf("fargateSizeOK(%d, %d) = %v, want %v", tc.cpu, tc.mem, got, tc.ok)
		}
	}
}

func TestParseTaskSize(t *testing.T) {
	tests := []struct {
		cpu, mem         string
		wantCPU, wantMem int
		frag             string // non-empty: InvalidParameterException containing frag
	}{
		{"256", "512", 256, 512, ""},
		{"1024", "2048", 1024, 2048, ""},
		{"1 vCPU", "1GB", 1024, 1024, ""},
		{"1vcpu", "1 GB", 1024, 1024, ""},
		{".25 vcpu", "0.5GB", 256, 512, ""},
		{"0.5 vCPU", "1.5 gb", 512, 1536, ""},
		{"2 vCPUs", "2GiB", 2048, 2048, ""},
		{" 4 VCPU ", "512 MiB", 4096, 512, ""},
		{"16 vCPU", "120 GB", 16384, 122880, ""},
		{"", "", 0, 0, ""},
		{"256", "", 256, 0, ""},
		{"", "1GB", 0, 1024, ""},
		{"abc", "512", 0, 0, "Invalid 'cpu' setting for task"},
		{"256", "lots", 0, 0, "Invalid 'memory' setting for task"},
		{"-256", "512", 0, 0, "Invalid 'cpu' setting"},
		{"0", "512", 0, 0, "out of range"},
		{"256", "0GB", 0, 0, "out of range"},
		{"256.5", "512", 0, 0, "Invalid 'cpu' setting"},
		{"1e3", "512", 0, 0, "Invalid 'cpu' setting"},
		{"0x100", "512", 0, 0, "Invalid 'cpu' setting"},
		{"Inf vcpu", "512", 0, 0, "Invalid 'cpu' setting"},
		{"vcpu", "512", 0, 0, "Invalid 'cpu' setting"},
		{"1 GB", "512", 0, 0, "Invalid 'cpu' setting"},
		{"256", "1 vcpu", 0, 0, "Invalid 'memory' setting"},
		{"0.3 vcpu", "512", 0, 0, "whole number of CPU units"},
		{"256", "0.1GB", 0, 0, "whole number of MiB"},
		{"99999999999", "512", 0, 0, "out of range"},
		{"256", "3000000 GB", 0, 0, "out of range"},
		{"１ vCPU", "512", 0, 0, "Invalid 'cpu' setting"},
	}
	for _, tc := range tests {
		t.Run(tc.cpu+"/"+tc.mem, func(t *testing.T) {
			cpu, mem, err := parseTaskSize(tc.cpu, tc.mem)
			if tc.frag != "" {
				wantErr(t, err, inv, tc.frag)
				return
			}
			wantErr(t, err, codeOK, "")
			if cpu != tc.wantCPU || mem != tc.wantMem {
				t.Errorf("parseTaskSize(%q, %q) = %d, %d; want %d, %d", tc.cpu, tc.mem, cpu, mem, tc.wantCPU, tc.wantMem)
			}
		})
	}
}

func FuzzParseTaskSize(f *testing.F) {
	for _, s := range [][2]string{
		{"256", "512"}, {"1 vCPU", "1GB"}, {".25 vcpu", "0.5GB"}, {"16 vCPU", "120 GB"}, {"", ""},
		{"1e3", "0x10"}, {"Inf vcpu", "NaN gb"}, {"-1", "-1GB"}, {"0.0009765625 vcpu", "1.0009765625 GB"},
		{"99999999999999999999 vcpu", "1" + strings.Repeat("0", 400) + "GB"}, {"İ vcpu", "ȺGB"}, {" vcpu", "gb"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cpuIn, memIn string) {
		cpu, mem, err := parseTaskSize(cpuIn, memIn)
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != codeInvalidParameter {
				t.Fatalf("parseTaskSize(%q, %q) error %v is not an InvalidParameterException", cpuIn, memIn, err)
			}
			return
		}
		for _, v := range []int{cpu, mem} {
			if v < 0 || v > math.MaxInt32 {
				t.Fatalf("parseTaskSize(%q, %q) = %d, %d: out of range", cpuIn, memIn, cpu, mem)
			}
		}
		if (cpuIn == "") != (cpu == 0) || (memIn == "") != (mem == 0) {
			t.Fatalf("parseTaskSize(%q, %q) = %d, %d: absent/zero mismatch", cpuIn, memIn, cpu, mem)
		}
		// The normalized form (absent stays absent) parses to itself.
		itoa := func(n int) string {
			if n == 0 {
				return ""
			}
			return strconv.Itoa(n)
		}
		c2, m2, err := parseTaskSize(itoa(cpu), itoa(mem))
		if err != nil || c2 != cpu || m2 != mem {
			t.Fatalf("normalized %d/%d reparsed as %d/%d, %v", cpu, mem, c2, m2, err)
		}
	})
}

func TestValidateOverrides(t *testing.T) {
	// A Fargate task definition with two containers, as registered.
	base := func() *TaskDefinition {
		td := fargateTD()
		td.Cpu, td.Memory = "512", "1024"
		td.ContainerDefinitions[0].Cpu = 256
		td.ContainerDefinitions[0].Memory = new(512)
		log := sidecar("log")
		log.MemoryReservation = new(128)
		td.ContainerDefinitions = append(td.ContainerDefinitions, log)
		if err := validateTaskDefinition(td); err != nil {
			t.Fatal(err)
		}
		return td
	}
	tests := []struct {
		name   string
		td     func() *TaskDefinition
		o      *TaskOverride
		launch string
		code   string
		frag   string
	}{
		{"nil", base, nil, "FARGATE", codeOK, ""},
		{"empty", base, &TaskOverride{}, "FARGATE", codeOK, ""},
		{"command and env", base, &TaskOverride{ContainerOverrides: []ContainerOverride{
			{Name: "app", Command: []string{"sh"}, Environment: []KeyValuePair{{Name: "A", Value: "1"}}}}}, "FARGATE", codeOK, ""},
		{"unknown container", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "db"}}}, "FARGATE", inv,
			"Override for container named 'db' is not a container in the TaskDefinition. Containers: app, log."},
		{"unnamed container", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{}}}, "FARGATE", inv, "Override for container named not set"},
		{"duplicate override", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "app"}, {Name: "app"}}}, "FARGATE", inv, "Duplicate override for container 'app'"},
		{"task size valid pair", base, &TaskOverride{Cpu: "1 vCPU", Memory: "2GB"}, "FARGATE", codeOK, ""},
		{"task size bad pair", base, &TaskOverride{Memory: "8GB"}, "FARGATE", inv,
			"No Fargate configuration exists for given values: 512 CPU, 8192 memory. Valid memory values for 512 CPU: 1024, 2048, 3072, 4096."},
		{"task cpu malformed", base, &TaskOverride{Cpu: "fast"}, "FARGATE", inv, "Invalid 'cpu' setting for task"},
		{"task cpu override on ec2 too small", ec2TD, &TaskOverride{Cpu: "64"}, "EC2", inv, "Invalid 'cpu' override: 64 units"},
		{"fargate without task size", ec2TD, &TaskOverride{}, "FARGATE", inv, "Task definition does not support launch_type FARGATE"},
		{"ec2 without task size", ec2TD, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "job", Memory: new(4096)}}}, "EC2", codeOK, ""},
		{"container memory over task", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "app", Memory: new(2048)}}}, "FARGATE", inv,
			"'memory' setting for container 'app' is greater than for task"},
		{"container memory fits larger task", base, &TaskOverride{Memory: "4GB", ContainerOverrides: []ContainerOverride{{Name: "app", Memory: new(2048)}}}, "FARGATE", codeOK, ""},
		{"task size shrinks, still fits", base, &TaskOverride{Cpu: "256", Memory: "512"}, "FARGATE", codeOK, ""},
		{"task memory shrinks below container", ec2TD, &TaskOverride{Memory: "64"}, "EC2", inv,
			"'memory' setting for container 'job' is greater than for task: 128 MiB > 64 MiB"},
		{"container cpu over task", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "log", Cpu: new(1024)}}}, "FARGATE", inv,
			"'cpu' setting for container 'log' is greater than for task"},
		{"sum cpu over task", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "log", Cpu: new(300)}}}, "FARGATE", inv,
			"The sum of all container 'cpu' values (556) cannot be greater than the task 'cpu' (512)"},
		{"reservation over memory", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "app", MemoryReservation: new(600)}}}, "FARGATE", inv,
			"'memoryReservation' setting for container 'app' (600 MiB) is greater than its 'memory' (512 MiB)"},
		{"sum reservation over task", base, &TaskOverride{ContainerOverrides: []ContainerOverride{
			{Name: "app", MemoryReservation: new(512)}, {Name: "log", MemoryReservation: new(600)}}}, "FARGATE", inv,
			"The sum of all container 'memoryReservation' values (1112 MiB)"},
		{"negative cpu", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "app", Cpu: new(-1)}}}, "FARGATE", inv, "'cpu' override for container 'app' must be 0 or greater"},
		{"zero memory", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "app", Memory: new(0)}}}, "FARGATE", inv, "'memory' override for container 'app' must be greater than 0"},
		{"zero reservation", base, &TaskOverride{ContainerOverrides: []ContainerOverride{{Name: "log", MemoryReservation: new(0)}}}, "FARGATE", inv,
			"'memoryReservation' override for container 'log' must be greater than 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := tc.td()
			var before TaskOverride
			if tc.o != nil {
				before = *tc.o
			}
			wantErr(t, validateOverrides(td, tc.o, tc.launch), tc.code, tc.frag)
			if tc.o != nil && (tc.o.Cpu != before.Cpu || tc.o.Memory != before.Memory) {
				t.Errorf("overrides modified: %+v", tc.o)
			}
		})
	}
}
