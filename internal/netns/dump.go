package netns

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpRetries bounds how often a netlink dump is repeated when the kernel
// flags it as interrupted.
const dumpRetries = 20

// dump runs a netlink dump (LinkList, AddrList …) again while the kernel
// reports it interrupted by a concurrent change (NLM_F_DUMP_INTR, which
// vishvananda/netlink returns as ErrDumpInterrupted with partial results):
// tasks attach and detach at the same time, so a dump racing them is normal
// and only its complete result may be used.
func dump[T any](list func() (T, error)) (T, error) {
	var out T
	var err error
	for i := 0; i < dumpRetries; i++ {
		if out, err = list(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}
