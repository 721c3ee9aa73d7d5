//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package dirlock

import "os"

// Platforms without flock or LockFileEx (aix, plan9, js, wasip1) get no
// lock: the file still names the last process that started on the
// directory, but nothing stops a second one.
func lock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
