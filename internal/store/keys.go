package store

import "strings"

// Key layout, version 1. Every value is a JSON document.
//
//	/berth/v1/
//	├── accounts/keys/<access-key-id>          account id and secret of an access key
//	├── accounts/ids/<account>                 an account made by CreateAccount (its id is taken)
//	├── accounts/sessions/<access-key-id>      temporary credentials (ASIA…) of a task role: secret, session token, account, role, task, expiry (leased)
//	├── accounts/task-sessions/<task-id>/<akid> the temporary credentials minted for a task (revoked together when it stops; leased)
//	├── iam/<account>/roles/<lower-case name>  an IAM role with its trust policy (IAM is global: no region)
//	├── agent-tokens/<sha256(token)>            join tokens agents present
//	├── nodes/<node-id>                         a capacity host, under its lease (gone = host lost)
//	├── nodeowners/<node-id>                    a user's host: its account, cluster, container instance and node token hash
//	├── assign/<node-id>/<task-id>              desired state of a task placed on a node (the agent watches its prefix)
//	├── ecr/token-secret                        HMAC key of registry passwords (GetAuthorizationToken)
//	├── ecr/lifecycle/<account>/<region>/<name> a repository's lifecycle policy (one listing for the reconciler)
//	├── vpc-scopes/<account>/<region>           the scope has VPC state (the firewall reconciler's full pass lists these)
//	├── publicip/<ip>                           a public address leased to an ENI (global: the pool spans accounts)
//	├── fw/<node-id>/<eni-id>                   the firewall of an ENI on a node (agentapi.Firewall; the agent watches its prefix)
//	├── sgsets/<account>/<region>/<sg-id>       rewritten when the group gains or loses a member: the revision of its address set
//	├── elb-scopes/<account>/<region>           the scope has ELB state (LoadBalancers and the drained-target reconciler list these)
//	├── lbs/<node-id>/<lb-id>                   a load balancer placed on a node (agentapi.LoadBalancerSpec; the agent watches its prefix)
//	├── lbaddr/<ip>                             a public address leased to a load balancer (global: the pool spans accounts)
//	├── services/<account>/<region>/<cluster>/<name>  a service exists (the service scheduler walks these)
//	├── usage/<account>/<region>/<task-id>     a stopped task's metered usage (billing.Usage; created once, never rewritten)
//	└── acct/<account>/<region>/
//	    ├── clusters/<name>
//	    ├── taskdefs/<family>/<revision %010d>
//	    ├── families/<family>                   last revision handed out
//	    ├── tasks/<cluster>/<task-id>           the task as DescribeTasks shows it
//	    ├── services/<cluster>/<name>           an ECS service with its deployments and events
//	    ├── instances/<cluster>/<id>            a container instance (resources, attributes, status)
//	    ├── capacity-providers/<name>           a user's capacity provider
//	    ├── service-tasks/<cluster>/<name>/<id> the service's tasks (deleted when the scheduler has counted the stop)
//	    ├── ecr/repos/<name>                    an ECR repository (its images live in the registry's storage)
//	    ├── ecr/repo-policies/<name>            its repository policy
//	    ├── ecr/lifecycle-previews/<name>       the policy of its last StartLifecyclePolicyPreview
//	    ├── vpc/defaults                        the default VPC was made (created once, with it, in one transaction)
//	    ├── vpc/vpcs/<vpc-id>                   a VPC (rewritten when a subnet or group is created in it)
//	    ├── vpc/subnets/<subnet-id>             a subnet
//	    ├── vpc/sgs/<sg-id>                     a security group and its rules (rewritten when a rule references it)
//	    ├── vpc/enis/<attachment-id>            a task's network interface, by its ECS attachment
//	    ├── vpc/ipam/<subnet-id>/<ip>           an address of the subnet leased to an ENI
//	    ├── vpc/sg-members/<sg-id>/<attach-id>  an ENI in the group (DeleteSecurityGroup requires none)
//	    ├── elb/cfg/seq                         bumped by every ELB configuration change (serialises them)
//	    ├── elb/cfg/lb/<lb-id>                  a load balancer (id: the 16 hex digits ending its ARN)
//	    ├── elb/cfg/tg/<tg-id>                  a target group with its health check and attributes
//	    ├── elb/cfg/listener/<lb-id>/<id>       a listener with its default actions
//	    ├── elb/cfg/rule/<listener-id>/<id>     a listener rule (the default rule lives in its listener)
//	    └── elb/targets/<tg-id>/<ip>:<port>     a registered target, its health and deregistration time
const Root = "/berth/v1/"

// Key joins parts under Root with "/".
func Key(parts ...string) string { return join(parts, "") }

// Prefix is Key with a trailing "/", for listing a directory.
func Prefix(parts ...string) string { return join(parts, "/") }

// join is Root, parts joined by "/", and tail, built in one allocation:
// keys are built on every request, poll and report (Root + strings.Join +
// a tail was three).
func join(parts []string, tail string) string {
	n := len(Root) + len(tail) + max(len(parts)-1, 0)
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(Root)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	b.WriteString(tail)
	return b.String()
}

// Scoped is Key under one account's region.
func Scoped(account, region string, parts ...string) string {
	return Key(append([]string{"acct", account, region}, parts...)...)
}

// ScopedPrefix is Scoped with a trailing "/".
func ScopedPrefix(account, region string, parts ...string) string {
	return Scoped(account, region, parts...) + "/"
}
