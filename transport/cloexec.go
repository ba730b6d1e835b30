package transport

import "syscall"

// markCloexec restores close-on-exec on an accepted socket. nbio takes
// over an accepted socket with a plain dup(2), which clears the flag; if
// the process then forks (os/exec), the child keeps the socket open, and
// after the broker closes its descriptor the kernel reuses the number for
// the next connection while epoll still reports the old socket's events
// under it, tearing the new connection down. Marking the duplicate in Open
// leaves only the few instructions between nbio's dup and Open unguarded;
// holding syscall.ForkLock across them stalled os/exec under load.
func markCloexec(fd int) { syscall.CloseOnExec(fd) }
