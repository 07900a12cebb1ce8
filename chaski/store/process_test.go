package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runHelper is the body of the test binary when it is re-executed as a
// helper process; its exit code becomes the process's.
func runHelper(mode string) int {
	path := os.Getenv(helperPathEnv)
	switch mode {
	case "crash":
		return helperCrashWriter(path, os.Getenv(helperArgEnv))
	case "hold":
		return helperHold(path)
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperCrashWriter writes keys until it is killed, printing each key only
// after Set has returned. Anything printed is therefore a promise that the
// write is durable.
func helperCrashWriter(path, prefix string) int {
	s, err := Open(path, Options{LockTimeout: 30 * time.Second, PurgeInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	// Bound the run in case the parent dies without killing us.
	stopAt := time.Now().Add(2 * time.Minute)
	for i := 0; time.Now().Before(stopAt); i++ {
		key := fmt.Sprintf("%s%07d", prefix, i)
		if err := s.Set(key, crashValue(key, i), time.Duration(i%3)*time.Hour); err != nil {
			fmt.Fprintln(os.Stderr, "set:", err)
			return 1
		}
		// One write(2) of a short line to a pipe is atomic, so the parent
		// never sees half a key as a whole one.
		if _, err := os.Stdout.WriteString(key + "\n"); err != nil {
			return 1
		}
	}
	return 0
}

// crashValue is deterministic so the parent can check contents, and varies in
// size so some values need overflow pages.
func crashValue(key string, i int) []byte {
	n := (i * 7919) % 20000
	return append([]byte(key+":"), bytes.Repeat([]byte{byte(i)}, n)...)
}

// helperHold opens the store, says so, and keeps it open until stdin closes.
func helperHold(path string) int {
	s, err := Open(path, Options{LockTimeout: 30 * time.Second, PurgeInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	return 0
}

func helperCmd(t *testing.T, mode, path, arg string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path, helperArgEnv+"="+arg)
	cmd.Stderr = &strings.Builder{}
	return cmd
}

func TestLockedSameProcess(t *testing.T) {
	path := tempPath(t)
	first := openAt(t, path, Options{})
	mustSet(t, first, "k", []byte("v"), 0)

	const timeout = 300 * time.Millisecond
	start := time.Now()
	s, err := Open(path, Options{LockTimeout: timeout, PurgeInterval: -1})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("second Open of the same file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	// bbolt retries every 50ms and gives up just under the timeout.
	if elapsed < timeout/2 {
		t.Errorf("gave up after %v, before LockTimeout %v", elapsed, timeout)
	}
	if elapsed > timeout+5*time.Second {
		t.Errorf("Open took %v with LockTimeout %v", elapsed, timeout)
	}

	start = time.Now()
	_, err = Open(path, Options{LockTimeout: -1, PurgeInterval: -1})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("LockTimeout<0: err = %v, want ErrLocked", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("LockTimeout<0 waited %v", elapsed)
	}

	// The failed attempts must not have disturbed the holder or the file.
	mustGet(t, first, "k", []byte("v"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := openAt(t, path, Options{LockTimeout: 10 * time.Second})
	mustGet(t, again, "k", []byte("v"))
}

func TestLockedOtherProcess(t *testing.T) {
	path := tempPath(t)
	cmd := helperCmd(t, "hold", path, "")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	killer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer killer.Stop()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper said %q, %v; stderr: %s", line, err, cmd.Stderr)
	}

	const timeout = 300 * time.Millisecond
	start := time.Now()
	s, err := Open(path, Options{LockTimeout: timeout, PurgeInterval: -1})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process holds the store")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if elapsed > timeout+5*time.Second {
		t.Errorf("Open took %v with LockTimeout %v", elapsed, timeout)
	}

	// Once the holder lets go, Open succeeds.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, cmd.Stderr)
	}
	s2 := openAt(t, path, Options{LockTimeout: 10 * time.Second})
	if s2.Len() != 0 {
		t.Errorf("Len = %d", s2.Len())
	}
}

// TestCrashSafety SIGKILLs a writer mid-stream, twice over the same file, and
// checks that every write it acknowledged survived intact.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := tempPath(t)
	var acked []string
	for round := range 2 {
		prefix := fmt.Sprintf("r%d-", round)
		// Vary the kill point so repeated runs hit different moments of a
		// write (and of file growth).
		minAcked := 40 + rand.IntN(200)
		keys := runAndKill(t, path, prefix, minAcked)
		t.Logf("round %d: %d acknowledged writes before SIGKILL", round, len(keys))
		acked = append(acked, keys...)

		s := openAt(t, path, Options{LockTimeout: 10 * time.Second})
		for _, key := range acked {
			_, num, _ := strings.Cut(key, "-")
			i, err := strconv.Atoi(num)
			if err != nil {
				t.Fatalf("bad key %q from helper", key)
			}
			got, err := s.Get(key)
			if err != nil {
				t.Fatalf("acknowledged key %q lost after crash: %v", key, err)
			}
			if !bytes.Equal(got, crashValue(key, i)) {
				t.Fatalf("key %q: value corrupted (%d bytes)", key, len(got))
			}
		}
		// At most the one write in flight at the kill may exist unacknowledged.
		if n := s.Len(); n < len(acked) || n > len(acked)+round+1 {
			t.Errorf("Len = %d, acknowledged %d", n, len(acked))
		}
		checkConsistency(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts a crash writer, waits until it has acknowledged at least
// minAcked keys, kills it with SIGKILL and returns every key it acknowledged.
func runAndKill(t *testing.T, path, prefix string, minAcked int) []string {
	t.Helper()
	cmd := helperCmd(t, "crash", path, prefix)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Never let a stuck child hang the test.
	watchdog := time.AfterFunc(90*time.Second, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()

	r := bufio.NewReader(stdout)
	var keys []string
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A partial last line (no newline) was never fully announced.
			break
		}
		keys = append(keys, strings.TrimSuffix(line, "\n"))
		if len(keys) == minAcked && !killed {
			// Kill while the child is busy in its next Set.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("helper stopped after %d keys: %v; stderr: %s", len(keys), err, cmd.Stderr)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helper wait: %v", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL; stderr: %s", err, cmd.Stderr)
	}
	return keys
}
