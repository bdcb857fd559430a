package store

import "strings"

// Key layout, version 1. Every value is a JSON document.
//
//	/berth/v1/
//	├── accounts/keys/<access-key-id>          account id and secret of an access key
//	├── agent-tokens/<sha256(token)>            join tokens agents present
//	├── nodes/<node-id>                         a capacity host, under its lease (gone = host lost)
//	├── assign/<node-id>/<task-id>              desired state of a task placed on a node (the agent watches its prefix)
//	├── pending/<task-id>                       a task waiting for placement (the scheduler watches this prefix)
//	├── ecr/token-secret                        HMAC key of registry passwords (GetAuthorizationToken)
//	├── ecr/lifecycle/<account>/<region>/<name> a repository's lifecycle policy (one listing for the reconciler)
//	└── acct/<account>/<region>/
//	    ├── clusters/<name>
//	    ├── taskdefs/<family>/<revision %010d>
//	    ├── families/<family>                   last revision handed out
//	    ├── tasks/<cluster>/<task-id>           the task as DescribeTasks shows it
//	    ├── ecr/repos/<name>                    an ECR repository (its images live in the registry's storage)
//	    ├── ecr/repo-policies/<name>            its repository policy
//	    └── ecr/lifecycle-previews/<name>       the policy of its last StartLifecyclePolicyPreview
const Root = "/berth/v1/"

// Key joins parts under Root with "/".
func Key(parts ...string) string { return Root + strings.Join(parts, "/") }

// Prefix is Key with a trailing "/", for listing a directory.
func Prefix(parts ...string) string { return Key(parts...) + "/" }

// Scoped is Key under one account's region.
func Scoped(account, region string, parts ...string) string {
	return Key(append([]string{"acct", account, region}, parts...)...)
}

// ScopedPrefix is Scoped with a trailing "/".
func ScopedPrefix(account, region string, parts ...string) string {
	return Scoped(account, region, parts...) + "/"
}
