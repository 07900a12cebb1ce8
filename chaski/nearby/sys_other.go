//go:build !unix

package nearby

import "syscall"

func checkPrivateDir(string) error { return nil }

func processAlive(int) bool { return true }

func reuseAddr(network, address string, c syscall.RawConn) error { return nil }
