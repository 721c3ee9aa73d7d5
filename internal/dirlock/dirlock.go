// Package dirlock keeps a directory to one process at a time: Acquire
// takes an operating-system lock on a file in it, which the process holds
// until Release or until it exits, however it exits (the kernel drops the
// lock of a killed process). The node's data dir holds a SQLite file and
// a NATS JetStream store that two processes must never open at once.
package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file Acquire creates in the directory. It stays
// after Release (deleting it would let two processes lock two different
// files of that name); while locked it holds the holder's process id.
const FileName = "causeway.lock"

// HeldError is what Acquire returns when another process, or another
// Acquire of this process, holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id as written in the lock file; 0 when
	// the holder has not written it yet.
	PID int
}

func (e *HeldError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("%s is locked by another process", e.Path)
	}
	return fmt.Sprintf("%s is locked by process %d", e.Path, e.PID)
}

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Acquire locks dir, which must exist, without waiting: if another
// process (or another Acquire in this one, through its own open file)
// holds the lock, it returns a *HeldError naming the holder's pid. On
// success the lock file holds this process's pid.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errHeld) {
			return nil, &HeldError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release empties the lock file and unlocks it. It is safe to call on a
// nil Lock and more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	err := f.Truncate(0)
	return errors.Join(err, unlock(f), f.Close())
}

// errHeld is what lock returns when the file is locked elsewhere.
var errHeld = errors.New("locked")

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID reads the holder's pid; 0 if it has not written it yet.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 0 {
		return 0
	}
	return pid
}
