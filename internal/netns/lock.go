package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// LockDir holds the lock files that serialise changes to the host's
// network state across agent processes.
const LockDir = "/run/berth"

// uplinksLock is the host-wide lock held while an uplink address is chosen
// and assigned.
const uplinksLock = "uplinks"

// hostLock is a held lock: a mutex inside this process (so goroutines do
// not each spend an OS thread blocked in flock) and an flock(2) on
// LockDir/<key>.lock across processes.
type hostLock struct {
	key  string
	path string
	f    *os.File
	m    *keyMutex
}

type keyMutex struct {
	sync.Mutex
	refs int
}

var (
	keyMutexesMu sync.Mutex
	keyMutexes   = map[string]*keyMutex{}
)

// lockVPC takes the lock of one VPC's namespace.
func lockVPC(vpcID string) (*hostLock, error) { return lockKey("vpc-" + vpcID) }

// lockKey takes the lock named key, waiting for it.
func lockKey(key string) (*hostLock, error) {
	keyMutexesMu.Lock()
	m := keyMutexes[key]
	if m == nil {
		m = &keyMutex{}
		keyMutexes[key] = m
	}
	m.refs++
	keyMutexesMu.Unlock()
	m.Lock()

	l := &hostLock{key: key, path: filepath.Join(LockDir, key+".lock"), m: m}
	if err := l.flock(); err != nil {
		l.unlockMutex()
		return nil, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return l, nil
}

// flock opens and locks the lock file. A holder may remove the file before
// it unlocks (release(true)); whoever was waiting on the removed file then
// holds a lock nobody else can see, so it checks, once locked, that the
// file it holds is still the one at the path, and starts over if not.
func (l *hostLock) flock() error {
	for {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(LockDir, 0o755); err != nil {
				return err
			}
			f, err = os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		}
		if err != nil {
			return err
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if err != nil {
			f.Close()
			return os.NewSyscallError("flock", err)
		}
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return os.NewSyscallError("fstat", err)
		}
		if err := unix.Stat(l.path, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			l.f = f
			return nil
		}
		f.Close() // removed or replaced while we waited
	}
}

// release unlocks; with remove it first deletes the lock file (when what it
// guards is gone, so that no file is left behind per deleted VPC).
func (l *hostLock) release(remove bool) {
	if remove {
		_ = os.Remove(l.path)
	}
	_ = l.f.Close() // closing the last descriptor drops the flock
	l.unlockMutex()
}

func (l *hostLock) unlockMutex() {
	l.m.Unlock()
	keyMutexesMu.Lock()
	l.m.refs--
	if l.m.refs == 0 {
		delete(keyMutexes, l.key)
	}
	keyMutexesMu.Unlock()
}
