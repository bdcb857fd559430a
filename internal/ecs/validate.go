package ecs

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Launch-type compatibilities and network modes as ECS spells them.
const (
	compatEC2      = "EC2"
	compatFargate  = "FARGATE"
	compatExternal = "EXTERNAL"

	networkBridge = "bridge"
	networkHost   = "host"
	networkAwsvpc = "awsvpc"
	networkNone   = "none"
)

// ECS limits that RegisterTaskDefinition enforces.
const (
	maxContainersPerTask = 10
	minTaskCPU           = 128    // 0.125 vCPU, the EC2 minimum
	maxTaskCPU           = 196608 // 192 vCPU, the EC2 maximum
	maxFargateTimeout    = 120    // stopTimeout/startTimeout ceiling on Fargate
	minContainerTimeout  = 2
)

// Health check bounds and defaults (ECS HealthCheck API reference).
const (
	hcIntervalMin, hcIntervalMax, hcIntervalDefault = 5, 300, 30
	hcTimeoutMin, hcTimeoutMax, hcTimeoutDefault    = 2, 60, 5
	hcRetriesMin, hcRetriesMax, hcRetriesDefault    = 1, 10, 3
	hcStartPeriodMin, hcStartPeriodMax              = 0, 300
)

// tdNameRE is the pattern of task definition families and container names.
var tdNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// sizeNumberRE is a plain decimal number: "2", "0.5", ".25". No signs,
// exponents, hex or underscores, which strconv.ParseFloat would accept.
var sizeNumberRE = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

var (
	validCompatibilities = []string{compatEC2, compatFargate, compatExternal}
	validNetworkModes    = []string{networkBridge, networkHost, networkAwsvpc, networkNone}
	validPidModes        = []string{"host", "task"}
	validIpcModes        = []string{"host", "task", "none"}
	validConditions      = []string{"START", "COMPLETE", "SUCCESS", "HEALTHY"}
	validLogDrivers      = []string{"json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens"}
	fargateLogDrivers    = []string{"awslogs", "splunk", "awsfirelens"}
	fargateCapabilities  = []string{"SYS_PTRACE"}
	fargateCPUs          = []int{256, 512, 1024, 2048, 4096, 8192, 16384}
)

// fargateMemories lists the memory sizes (MiB) Fargate offers for cpu units,
// or nil when cpu is not a Fargate size.
func fargateMemories(cpu int) []int {
	var lo, hi, step int
	switch cpu {
	case 256:
		return []int{512, 1024, 2048}
	case 512:
		lo, hi, step = 1024, 4096, 1024
	case 1024:
		lo, hi, step = 2048, 8192, 1024
	case 2048:
		lo, hi, step = 4096, 16384, 1024
	case 4096:
		lo, hi, step = 8192, 30720, 1024
	case 8192:
		lo, hi, step = 16384, 61440, 4096
	case 16384:
		lo, hi, step = 32768, 122880, 8192
	default:
		return nil
	}
	var out []int
	for m := lo; m <= hi; m += step {
		out = append(out, m)
	}
	return out
}

// fargateSizeOK reports whether cpu (units) and memory (MiB) are a valid Fargate pair.
func fargateSizeOK(cpu, memory int) bool {
	return slices.Contains(fargateMemories(cpu), memory)
}

// fargateSizeErr explains why cpu/memory is not a Fargate size and lists what is.
func fargateSizeErr(mk func(string, ...any) error, cpu, memory int) error {
	msg := fmt.Sprintf("No Fargate configuration exists for given values: %d CPU, %d memory.", cpu, memory)
	mems := fargateMemories(cpu)
	switch {
	case mems == nil:
		msg += " Valid CPU values: " + joinInts(fargateCPUs) + "."
	case len(mems) <= 4:
		msg += fmt.Sprintf(" Valid memory values for %d CPU: %s.", cpu, joinInts(mems))
	default:
		msg += fmt.Sprintf(" Valid memory values for %d CPU: %d to %d in increments of %d.",
			cpu, mems[0], mems[len(mems)-1], mems[1]-mems[0])
	}
	return mk("%s See the Amazon ECS documentation for the valid values.", msg)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// parseTaskSize parses task-level cpu ("256", "1024", "1 vCPU", ".25 vcpu") and memory ("512", "1GB", "1 GB", "0.5GB") as ECS accepts them,
// returning units and MiB. An empty string means the value is absent and
// yields 0 without error.
func parseTaskSize(cpu, memory string) (cpuUnits, memoryMiB int, err error) {
	if cpu != "" {
		if cpuUnits, err = parseSizeValue(cpu, "cpu"); err != nil {
			return 0, 0, err
		}
	}
	if memory != "" {
		if memoryMiB, err = parseSizeValue(memory, "memory"); err != nil {
			return 0, 0, err
		}
	}
	return cpuUnits, memoryMiB, nil
}

// sizeSuffix is a unit a task size may carry, lower-cased, and its factor to
// CPU units or MiB; the first suffix that matches wins.
type sizeSuffix struct {
	suffix string
	scale  float64
}

var (
	cpuSuffixes    = []sizeSuffix{{"vcpus", 1024}, {"vcpu", 1024}}
	memorySuffixes = []sizeSuffix{{"gib", 1024}, {"gb", 1024}, {"mib", 1}, {"mb", 1}}
)

// parseSizeValue parses one task size. kind is "cpu" (units, or vCPU with a
// "vcpu" suffix) or "memory" (MiB, or GB with a "GB" suffix).
func parseSizeValue(s, kind string) (int, error) {
	hint := "Specify CPU units as an integer (for example 1024) or vCPUs as a string (for example 1 vCPU)."
	if kind == "memory" {
		hint = "Specify MiB as an integer (for example 2048) or GB as a string (for example 2GB)."
	}
	bad := func() error { return invalidParam("Invalid '%s' setting for task: %q. %s", kind, s, hint) }
	if len(s) > 64 {
		return 0, bad()
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return 0, bad()
		}
	}
	num := strings.TrimSpace(s)
	lower := strings.ToLower(num) // ASCII only, so byte offsets match num's
	scale, unit := 1.0, ""
	suffixes := cpuSuffixes
	if kind == "memory" {
		suffixes = memorySuffixes
	}
	for _, sf := range suffixes {
		if strings.HasSuffix(lower, sf.suffix) {
			num = strings.TrimSpace(num[:len(num)-len(sf.suffix)])
			scale, unit = sf.scale, sf.suffix
			break
		}
	}
	if !sizeNumberRE.MatchString(num) {
		return 0, bad()
	}
	if unit == "" && strings.Contains(num, ".") {
		// A bare number is already in units or MiB: it must be whole.
		return 0, bad()
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad()
	}
	v := f * scale
	if v <= 0 || v > math.MaxInt32 {
		return 0, invalidParam("Invalid '%s' setting for task: %q is out of range. %s", kind, s, hint)
	}
	if v != math.Trunc(v) {
		what := "CPU units"
		if kind == "memory" {
			what = "MiB"
		}
		return 0, invalidParam("Invalid '%s' setting for task: %q is %g %s; it must be a whole number of %s.",
			kind, s, v, what, what)
	}
	return int(v), nil
}

// validateTaskDefinition checks a RegisterTaskDefinition request as ECS does and fills ECS's defaults in place
// (essential=true when absent, compatibilities, networkMode default "bridge" but "awsvpc" required when FARGATE is in requiresCompatibilities,
// port mapping hostPort defaulted to containerPort under awsvpc, protocol "tcp").
//
// It also normalises task-level cpu and memory to units and MiB ("1 vCPU" ->
// "1024", "2GB" -> "2048") and fills health check defaults.
func validateTaskDefinition(td *TaskDefinition) error {
	if td.Family == "" {
		return clientErr("Family should not be null or empty.")
	}
	if !tdNameRE.MatchString(td.Family) {
		return clientErr("Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.")
	}
	if len(td.ContainerDefinitions) == 0 {
		return clientErr("Container list cannot be empty.")
	}
	if len(td.ContainerDefinitions) > maxContainersPerTask {
		return clientErr("Too many containers. A task definition can have at most %d containers; it has %d.",
			maxContainersPerTask, len(td.ContainerDefinitions))
	}
	for _, c := range td.RequiresCompatibilities {
		if !slices.Contains(validCompatibilities, c) {
			return clientErr("Invalid requiresCompatibilities value %q. Valid values: %s.", c, strings.Join(validCompatibilities, ", "))
		}
	}
	if td.NetworkMode != "" && !slices.Contains(validNetworkModes, td.NetworkMode) {
		return clientErr("Invalid networkMode %q. Valid values: %s.", td.NetworkMode, strings.Join(validNetworkModes, ", "))
	}
	if td.PidMode != "" && !slices.Contains(validPidModes, td.PidMode) {
		return clientErr("Invalid pidMode %q. Valid values: %s.", td.PidMode, strings.Join(validPidModes, ", "))
	}
	if td.IpcMode != "" && !slices.Contains(validIpcModes, td.IpcMode) {
		return clientErr("Invalid ipcMode %q. Valid values: %s.", td.IpcMode, strings.Join(validIpcModes, ", "))
	}
	cpu, mem, err := parseTaskSize(td.Cpu, td.Memory)
	if err != nil {
		return err
	}
	if cpu != 0 && (cpu < minTaskCPU || cpu > maxTaskCPU) {
		return invalidParam("Invalid 'cpu' setting for task: %d units. Task cpu must be between %d (0.125 vCPU) and %d (192 vCPU) units.",
			cpu, minTaskCPU, maxTaskCPU)
	}
	if cpu != 0 {
		td.Cpu = strconv.Itoa(cpu)
	}
	if mem != 0 {
		td.Memory = strconv.Itoa(mem)
	}
	requiresFargate := slices.Contains(td.RequiresCompatibilities, compatFargate)
	if requiresFargate {
		if err := fargateProblem(td, cpu, mem); err != nil {
			return err
		}
	}
	if td.NetworkMode == "" {
		td.NetworkMode = networkBridge
	}

	names := make(map[string]int, len(td.ContainerDefinitions))
	essential := false
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if c.Name == "" {
			return clientErr("Container.name should not be null or empty.")
		}
		if !tdNameRE.MatchString(c.Name) {
			return clientErr("Container.name contains invalid characters: %q. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.", c.Name)
		}
		if _, dup := names[c.Name]; dup {
			return clientErr("Duplicate container name: %q. Container names must be unique within a task definition.", c.Name)
		}
		names[c.Name] = i
		if c.Essential == nil {
			c.Essential = new(true)
		}
		essential = essential || *c.Essential
		if err := checkContainerDefinition(c, td.NetworkMode, cpu, mem); err != nil {
			return err
		}
	}
	if !essential {
		return clientErr("Task definition doesn't have any essential container. Set \"essential\": true on at least one container (containers are essential unless they say otherwise).")
	}
	if err := checkTaskResources(td.ContainerDefinitions, cpu, mem); err != nil {
		return err
	}
	if err := checkDependencies(td.ContainerDefinitions, names); err != nil {
		return err
	}

	switch {
	case td.NetworkMode != networkAwsvpc:
		td.Compatibilities = []string{compatExternal, compatEC2}
	case fargateProblem(td, cpu, mem) == nil:
		td.Compatibilities = []string{compatEC2, compatFargate}
	default:
		td.Compatibilities = []string{compatEC2}
	}
	return nil
}

// fargateProblem returns the first reason td cannot run on Fargate, or nil.
// It is both the FARGATE requiresCompatibilities check and the test for
// whether FARGATE belongs in compatibilities.
func fargateProblem(td *TaskDefinition, cpu, mem int) error {
	if td.NetworkMode != networkAwsvpc {
		return clientErr("Fargate only supports network mode ‘awsvpc’. Set networkMode to awsvpc (it is %s).", orUnset(td.NetworkMode))
	}
	if cpu == 0 {
		return clientErr("Fargate requires that 'cpu' be defined at the task level. Set the task cpu, for example \"256\" or \"1 vCPU\".")
	}
	if mem == 0 {
		return clientErr("Fargate requires that 'memory' be defined at the task level. Set the task memory, for example \"512\" or \"1GB\".")
	}
	if !fargateSizeOK(cpu, mem) {
		return fargateSizeErr(clientErr, cpu, mem)
	}
	if td.IpcMode != "" {
		return clientErr("Tasks using the Fargate launch type do not support ipcMode. Remove ipcMode.")
	}
	if td.PidMode == "host" {
		return clientErr("Tasks using the Fargate launch type do not support pidMode 'host'. Use pidMode 'task' or omit it.")
	}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if c.Privileged != nil && *c.Privileged {
			return clientErr("Tasks using the Fargate launch type do not support privileged containers. Remove \"privileged\" from container '%s'.", c.Name)
		}
		if lp := c.LinuxParameters; lp != nil && lp.Capabilities != nil {
			for _, capName := range lp.Capabilities.Add {
				if !slices.Contains(fargateCapabilities, capName) {
					return clientErr("Tasks using the Fargate launch type only support adding the 'SYS_PTRACE' kernel capability. Remove %q from linuxParameters.capabilities.add of container '%s'.", capName, c.Name)
				}
			}
		}
		if c.StopTimeout != nil && *c.StopTimeout > maxFargateTimeout {
			return clientErr("Tasks using the Fargate launch type must have a container stop timeout of at most %d seconds. Container '%s' has stopTimeout %d.", maxFargateTimeout, c.Name, *c.StopTimeout)
		}
		if c.StartTimeout != nil && *c.StartTimeout > maxFargateTimeout {
			return clientErr("Tasks using the Fargate launch type must have a container start timeout of at most %d seconds. Container '%s' has startTimeout %d.", maxFargateTimeout, c.Name, *c.StartTimeout)
		}
		if lc := c.LogConfiguration; lc != nil && !slices.Contains(fargateLogDrivers, lc.LogDriver) {
			return clientErr("Log driver %q is not supported by the Fargate launch type (container '%s'). Must be one of [%s].", lc.LogDriver, c.Name, strings.Join(fargateLogDrivers, ","))
		}
	}
	return nil
}

func orUnset(s string) string {
	if s == "" {
		return "not set"
	}
	return "'" + s + "'"
}

// checkContainerDefinition validates one container and fills its defaults.
// networkMode is the task's effective mode; cpu and mem are the task-level
// sizes (0 when absent).
func checkContainerDefinition(c *ContainerDefinition, networkMode string, cpu, mem int) error {
	if c.Image == "" {
		return clientErr("Container.image should not be null or empty. Set the image of container '%s'.", c.Name)
	}
	if c.Cpu < 0 {
		return clientErr("Invalid setting for container '%s'. 'cpu' must be 0 or greater.", c.Name)
	}
	if c.Memory != nil && *c.Memory <= 0 {
		return clientErr("Invalid setting for container '%s'. 'memory' must be greater than 0 MiB.", c.Name)
	}
	if c.MemoryReservation != nil && *c.MemoryReservation <= 0 {
		return clientErr("Invalid setting for container '%s'. 'memoryReservation' must be greater than 0 MiB.", c.Name)
	}
	if mem == 0 && c.Memory == nil && c.MemoryReservation == nil {
		return clientErr("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified (or set the task-level memory).", c.Name)
	}
	if c.Memory != nil && c.MemoryReservation != nil && *c.MemoryReservation > *c.Memory {
		return clientErr("Invalid setting for container '%s'. 'memory' (%d MiB) must be greater than or equal to 'memoryReservation' (%d MiB).",
			c.Name, *c.Memory, *c.MemoryReservation)
	}
	if mem != 0 && c.Memory != nil && *c.Memory > mem {
		return clientErr("Invalid setting for container '%s'. 'memory' (%d MiB) cannot be greater than the task 'memory' (%d MiB).", c.Name, *c.Memory, mem)
	}
	if mem != 0 && c.MemoryReservation != nil && *c.MemoryReservation > mem {
		return clientErr("Invalid setting for container '%s'. 'memoryReservation' (%d MiB) cannot be greater than the task 'memory' (%d MiB).", c.Name, *c.MemoryReservation, mem)
	}
	if cpu != 0 && c.Cpu > cpu {
		return clientErr("Invalid setting for container '%s'. 'cpu' (%d) cannot be greater than the task 'cpu' (%d).", c.Name, c.Cpu, cpu)
	}
	if c.Hostname != "" && networkMode == networkAwsvpc {
		return clientErr("Invalid setting for container '%s'. 'hostname' is not supported when networkMode=awsvpc; remove it.", c.Name)
	}
	if c.StopTimeout != nil && *c.StopTimeout < minContainerTimeout {
		return clientErr("Invalid setting for container '%s'. 'stopTimeout' must be at least %d seconds.", c.Name, minContainerTimeout)
	}
	if c.StartTimeout != nil && *c.StartTimeout < minContainerTimeout {
		return clientErr("Invalid setting for container '%s'. 'startTimeout' must be at least %d seconds.", c.Name, minContainerTimeout)
	}
	if err := checkPortMappings(c, networkMode); err != nil {
		return err
	}
	if err := checkHealthCheck(c); err != nil {
		return err
	}
	if lc := c.LogConfiguration; lc != nil {
		if lc.LogDriver == "" {
			return clientErr("Invalid setting for container '%s'. logConfiguration.logDriver should not be null or empty.", c.Name)
		}
		if !slices.Contains(validLogDrivers, lc.LogDriver) {
			return clientErr("Invalid setting for container '%s'. %q is not a valid log driver. Must be one of [%s].",
				c.Name, lc.LogDriver, strings.Join(validLogDrivers, ","))
		}
	}
	return nil
}

// checkPortMappings validates port mappings and fills protocol and, where
// host and container ports must match, hostPort.
func checkPortMappings(c *ContainerDefinition, networkMode string) error {
	same := networkMode == networkAwsvpc || networkMode == networkHost
	for i := range c.PortMappings {
		p := &c.PortMappings[i]
		if p.ContainerPort == nil {
			return clientErr("Invalid port mapping for container '%s'. containerPort must be specified.", c.Name)
		}
		if *p.ContainerPort < 1 || *p.ContainerPort > 65535 {
			return clientErr("Invalid port mapping for container '%s'. containerPort %d must be between 1 and 65535.", c.Name, *p.ContainerPort)
		}
		if p.HostPort != nil && (*p.HostPort < 0 || *p.HostPort > 65535) {
			return clientErr("Invalid port mapping for container '%s'. hostPort %d must be between 0 and 65535.", c.Name, *p.HostPort)
		}
		switch p.Protocol {
		case "":
			p.Protocol = "tcp"
		case "tcp", "udp":
		default:
			return clientErr("Invalid port mapping for container '%s'. protocol %q must be tcp or udp.", c.Name, p.Protocol)
		}
		if !same {
			continue
		}
		if p.HostPort == nil {
			p.HostPort = new(*p.ContainerPort)
		}
		if *p.HostPort != *p.ContainerPort {
			return clientErr("When networkMode=%s, the host ports and container ports in port mappings must match. Container '%s' maps hostPort %d to containerPort %d; omit hostPort or set it to %d.",
				networkMode, c.Name, *p.HostPort, *p.ContainerPort, *p.ContainerPort)
		}
	}
	return nil
}

// checkHealthCheck validates a container health check and fills its defaults.
func checkHealthCheck(c *ContainerDefinition) error {
	h := c.HealthCheck
	if h == nil {
		return nil
	}
	bad := func(format string, args ...any) error {
		return clientErr("Invalid 'healthCheck' setting for container '%s'. "+format, append([]any{c.Name}, args...)...)
	}
	switch {
	case len(h.Command) == 0:
		return bad("command should not be null or empty; use [\"CMD-SHELL\", \"<command>\"] or [\"CMD\", \"<executable>\", ...].")
	case h.Command[0] == "NONE":
	case h.Command[0] != "CMD" && h.Command[0] != "CMD-SHELL":
		return bad("command must start with CMD or CMD-SHELL (or be [\"NONE\"]), not %q.", h.Command[0])
	case len(h.Command) < 2:
		return bad("command %s needs the command to run after it.", h.Command[0])
	}
	fill := func(p **int, def int) {
		if *p == nil {
			*p = new(def)
		}
	}
	fill(&h.Interval, hcIntervalDefault)
	fill(&h.Timeout, hcTimeoutDefault)
	fill(&h.Retries, hcRetriesDefault)
	if *h.Interval < hcIntervalMin || *h.Interval > hcIntervalMax {
		return bad("interval must be between %d and %d seconds, not %d.", hcIntervalMin, hcIntervalMax, *h.Interval)
	}
	if *h.Timeout < hcTimeoutMin || *h.Timeout > hcTimeoutMax {
		return bad("timeout must be between %d and %d seconds, not %d.", hcTimeoutMin, hcTimeoutMax, *h.Timeout)
	}
	if *h.Retries < hcRetriesMin || *h.Retries > hcRetriesMax {
		return bad("retries must be between %d and %d, not %d.", hcRetriesMin, hcRetriesMax, *h.Retries)
	}
	if h.StartPeriod != nil && (*h.StartPeriod < hcStartPeriodMin || *h.StartPeriod > hcStartPeriodMax) {
		return bad("startPeriod must be between %d and %d seconds, not %d.", hcStartPeriodMin, hcStartPeriodMax, *h.StartPeriod)
	}
	return nil
}

// checkTaskResources checks the containers' combined reservations against
// the task-level cpu and memory (0 when absent).
func checkTaskResources(cs []ContainerDefinition, cpu, mem int) error {
	sumCPU, sumRes := 0, 0
	for i := range cs {
		sumCPU += cs[i].Cpu
		if cs[i].MemoryReservation != nil {
			sumRes += *cs[i].MemoryReservation
		}
	}
	if cpu != 0 && sumCPU > cpu {
		return clientErr("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'. The containers reserve %d, the task has %d.", sumCPU, cpu)
	}
	if mem != 0 && sumRes > mem {
		return clientErr("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'. The containers reserve %d MiB, the task has %d MiB.", sumRes, mem)
	}
	return nil
}

// checkDependencies validates dependsOn: targets exist, conditions are
// known and satisfiable, and the graph has no cycle.
func checkDependencies(cs []ContainerDefinition, names map[string]int) error {
	for i := range cs {
		c := &cs[i]
		for _, d := range c.DependsOn {
			j, ok := names[d.ContainerName]
			if !ok {
				return clientErr("Container '%s' cannot depend on container '%s' because it does not exist in the task definition.", c.Name, d.ContainerName)
			}
			if j == i {
				return clientErr("Container '%s' cannot depend on itself.", c.Name)
			}
			t := &cs[j]
			switch d.Condition {
			case "START":
			case "COMPLETE", "SUCCESS":
				if t.IsEssential() {
					return clientErr("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container. Set \"essential\": false on '%s' or use condition START or HEALTHY.", t.Name)
				}
			case "HEALTHY":
				if t.HealthCheck == nil || len(t.HealthCheck.Command) == 0 || t.HealthCheck.Command[0] == "NONE" {
					return clientErr("A dependency container with HEALTHY condition must have a health check configured. Add a healthCheck to '%s' or use condition START.", t.Name)
				}
			default:
				return clientErr("Invalid dependsOn condition %q for container '%s'. Valid values: %s.", d.Condition, c.Name, strings.Join(validConditions, ", "))
			}
		}
	}
	// Depth-first search; state 1 is "on the current path", 2 is "done".
	state := make([]uint8, len(cs))
	var path []string
	var visit func(i int) []string
	visit = func(i int) []string {
		switch state[i] {
		case 1:
			start := slices.Index(path, cs[i].Name)
			return append(slices.Clone(path[start:]), cs[i].Name)
		case 2:
			return nil
		}
		state[i] = 1
		path = append(path, cs[i].Name)
		for _, d := range cs[i].DependsOn {
			if cycle := visit(names[d.ContainerName]); cycle != nil {
				return cycle
			}
		}
		path = path[:len(path)-1]
		state[i] = 2
		return nil
	}
	for i := range cs {
		if cycle := visit(i); cycle != nil {
			return clientErr("Container dependencies contain a cycle: %s. Remove one of these dependsOn entries.", strings.Join(cycle, " -> "))
		}
	}
	return nil
}

// validateOverrides checks a RunTask overrides object against the task definition (container names exist, cpu/memory within the task's,
// task-level cpu/memory override is a valid Fargate pair for FARGATE).
//
// It does not modify o: callers read the task size with parseTaskSize.
func validateOverrides(td *TaskDefinition, o *TaskOverride, launchType string) error {
	if o == nil {
		return nil
	}
	cpuStr, memStr := td.Cpu, td.Memory
	if o.Cpu != "" {
		cpuStr = o.Cpu
	}
	if o.Memory != "" {
		memStr = o.Memory
	}
	cpu, mem, err := parseTaskSize(cpuStr, memStr)
	if err != nil {
		return err
	}
	if launchType == compatFargate {
		if cpu == 0 || mem == 0 {
			return invalidParam("Task definition does not support launch_type FARGATE: Fargate requires task-level 'cpu' and 'memory'. Set them in the task definition or in overrides.")
		}
		if !fargateSizeOK(cpu, mem) {
			return fargateSizeErr(invalidParam, cpu, mem)
		}
	} else if o.Cpu != "" && (cpu < minTaskCPU || cpu > maxTaskCPU) {
		return invalidParam("Invalid 'cpu' override: %d units. Task cpu must be between %d (0.125 vCPU) and %d (192 vCPU) units.", cpu, minTaskCPU, maxTaskCPU)
	}

	byName := make(map[string]*ContainerOverride, len(o.ContainerOverrides))
	for i := range o.ContainerOverrides {
		co := &o.ContainerOverrides[i]
		if !slices.ContainsFunc(td.ContainerDefinitions, func(c ContainerDefinition) bool { return c.Name == co.Name }) {
			return invalidParam("Override for container named %s is not a container in the TaskDefinition. Containers: %s.", orUnset(co.Name), containerNames(td))
		}
		if _, dup := byName[co.Name]; dup {
			return invalidParam("Duplicate override for container '%s'. Give each container at most one override.", co.Name)
		}
		byName[co.Name] = co
		if co.Cpu != nil && *co.Cpu < 0 {
			return invalidParam("'cpu' override for container '%s' must be 0 or greater.", co.Name)
		}
		if co.Memory != nil && *co.Memory <= 0 {
			return invalidParam("'memory' override for container '%s' must be greater than 0 MiB.", co.Name)
		}
		if co.MemoryReservation != nil && *co.MemoryReservation <= 0 {
			return invalidParam("'memoryReservation' override for container '%s' must be greater than 0 MiB.", co.Name)
		}
	}

	sumCPU, sumRes := 0, 0
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		ccpu, cmem, cres := c.Cpu, c.Memory, c.MemoryReservation
		if co := byName[c.Name]; co != nil {
			if co.Cpu != nil {
				ccpu = *co.Cpu
			}
			if co.Memory != nil {
				cmem = co.Memory
			}
			if co.MemoryReservation != nil {
				cres = co.MemoryReservation
			}
		}
		sumCPU += ccpu
		if cres != nil {
			sumRes += *cres
		}
		if cmem != nil && cres != nil && *cres > *cmem {
			return invalidParam("'memoryReservation' setting for container '%s' (%d MiB) is greater than its 'memory' (%d MiB).", c.Name, *cres, *cmem)
		}
		if mem != 0 && cmem != nil && *cmem > mem {
			return invalidParam("'memory' setting for container '%s' is greater than for task: %d MiB > %d MiB.", c.Name, *cmem, mem)
		}
		if mem != 0 && cres != nil && *cres > mem {
			return invalidParam("'memoryReservation' setting for container '%s' is greater than for task: %d MiB > %d MiB.", c.Name, *cres, mem)
		}
		if cpu != 0 && ccpu > cpu {
			return invalidParam("'cpu' setting for container '%s' is greater than for task: %d > %d.", c.Name, ccpu, cpu)
		}
		if mem == 0 && cmem == nil && cres == nil {
			return invalidParam("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", c.Name)
		}
	}
	if cpu != 0 && sumCPU > cpu {
		return invalidParam("The sum of all container 'cpu' values (%d) cannot be greater than the task 'cpu' (%d).", sumCPU, cpu)
	}
	if mem != 0 && sumRes > mem {
		return invalidParam("The sum of all container 'memoryReservation' values (%d MiB) cannot be greater than the task 'memory' (%d MiB).", sumRes, mem)
	}
	return nil
}

func containerNames(td *TaskDefinition) string {
	names := make([]string, len(td.ContainerDefinitions))
	for i, c := range td.ContainerDefinitions {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
