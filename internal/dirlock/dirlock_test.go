package dirlock_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/dirlock"
)

func TestASecondAcquireFailsNamingTheHolderUntilTheFirstIsReleased(t *testing.T) {
	dir := t.TempDir()
	first, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, dirlock.FileName)
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("the lock file holds %q (%v), want this process's pid %d", b, err, os.Getpid())
	}

	// flock belongs to the open file description: a second open in this
	// process conflicts just as another process would.
	second, err := dirlock.Acquire(dir)
	var held *dirlock.HeldError
	if !errors.As(err, &held) || second != nil {
		t.Fatalf("second Acquire = %v, %v; want a HeldError", second, err)
	}
	if held.PID != os.Getpid() || held.Path != path {
		t.Errorf("HeldError = %+v, want pid %d and path %s", held, os.Getpid(), path)
	}
	if want := path + " is locked by process " + strconv.Itoa(os.Getpid()); err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The failed attempt left the holder's pid in place.
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("after a failed Acquire the lock file holds %q", b)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Errorf("a second Release: %v", err)
	}
	third, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer third.Release()
}

func TestAcquireOnAMissingDirectoryIsNotAHeldLock(t *testing.T) {
	_, err := dirlock.Acquire(filepath.Join(t.TempDir(), "missing"))
	var held *dirlock.HeldError
	if err == nil || errors.As(err, &held) {
		t.Errorf("Acquire on a missing directory = %v", err)
	}
	var nothing *dirlock.Lock
	if err := nothing.Release(); err != nil {
		t.Errorf("Release of a nil Lock: %v", err)
	}
}
