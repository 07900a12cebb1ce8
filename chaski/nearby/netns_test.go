package nearby_test

// Tests on a small network of our own: network namespaces joined by veth
// pairs to bridges that live in another namespace of ours, so that every
// packet (multicast included) stays inside namespaces the test created.
// They need root and iproute2 and are skipped, with the reason, elsewhere.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/nearby"
	"golang.org/x/net/ipv4"
)

// testNet is a set of namespaces, each with one veth to a bridge.
type testNet struct {
	t      *testing.T
	prefix string
	bridge string // the namespace holding the bridges
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if testing.Short() {
		t.Skip("network-namespace test skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		t.Skip("network-namespace tests need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test needs root to create namespaces (run as root, as CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network-namespace test needs iproute2 (ip); .ci/run installs it")
	}
	n := &testNet{t: t, prefix: fmt.Sprintf("chl%d", os.Getpid()%100000)}
	n.bridge = n.prefix + "br"
	if err := ipCmd("netns", "add", n.bridge); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = ipCmd("netns", "del", n.bridge) })
	for _, br := range []string{"br0", "br1"} {
		for _, args := range [][]string{
			{"-n", n.bridge, "link", "add", br, "type", "bridge"},
			{"-n", n.bridge, "link", "set", br, "up"},
		} {
			if err := ipCmd(args...); err != nil {
				t.Skipf("cannot build the test network: %v", err)
			}
		}
	}
	return n
}

// host creates namespace name with address addr (CIDR) on bridge br.
func (n *testNet) host(name, br, addr string) string {
	n.t.Helper()
	ns := n.prefix + name
	if err := ipCmd("netns", "add", ns); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = ipCmd("netns", "del", ns) })
	port, veth := "p"+ns, "v"+ns
	for _, args := range [][]string{
		{"-n", n.bridge, "link", "add", port, "type", "veth", "peer", "name", veth, "netns", ns},
		{"-n", n.bridge, "link", "set", port, "master", br},
		{"-n", n.bridge, "link", "set", port, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", addr, "dev", veth},
		{"-n", ns, "link", "set", veth, "up"},
	} {
		if err := ipCmd(args...); err != nil {
			n.t.Fatal(err)
		}
	}
	return ns
}

// helper is this test binary re-run inside a namespace as a node
// (TestNetnsHelper), speaking JSON lines on stdout and commands on stdin.
type helper struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  *os.File
	mu     sync.Mutex
	lines  []map[string]any
	change chan struct{}
	stderr strings.Builder
	done   chan struct{}
}

func startHelper(t *testing.T, ns, name string, env ...string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, name: name, change: make(chan struct{}), done: make(chan struct{})}
	h.cmd = exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestNetnsHelper$", "-test.v=false")
	h.cmd.Env = append(os.Environ(), append([]string{"CHASKI_NETNS_HELPER=1", "HELPER_NAME=" + name,
		"XDG_RUNTIME_DIR=" + t.TempDir()}, env...)...)
	h.cmd.Stderr = &h.stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stdin = r
	h.stdin = w
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			h.mu.Lock()
			h.lines = append(h.lines, m)
			close(h.change)
			h.change = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
		_ = h.cmd.Wait()
		if t.Failed() {
			h.mu.Lock()
			t.Logf("helper %s: %d lines; stderr:\n%s", name, len(h.lines), h.stderr.String())
			for _, l := range h.lines {
				t.Logf("  %s %v", name, l)
			}
			h.mu.Unlock()
		}
	})
	return h
}

func (h *helper) send(line string) {
	if _, err := fmt.Fprintln(h.stdin, line); err != nil {
		h.t.Fatalf("%s: %v", h.name, err)
	}
}

// wait returns the first line (of all so far) for which match holds.
func (h *helper) wait(what string, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		for _, l := range h.lines {
			if match(l) {
				h.mu.Unlock()
				return l
			}
		}
		ch := h.change
		h.mu.Unlock()
		select {
		case <-ch:
		case <-h.done:
			h.t.Fatalf("%s exited while waiting for %s", h.name, what)
		case <-deadline:
			h.t.Fatalf("%s: timed out waiting for %s", h.name, what)
		}
	}
}

func event(name string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["event"] == name }
}

// ask sends a command and waits for its answer (a line with reply == tag).
func (h *helper) ask(cmd string, timeout time.Duration) map[string]any {
	h.t.Helper()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	h.send(cmd + " " + tag)
	return h.wait(cmd, timeout, func(m map[string]any) bool { return m["reply"] == tag })
}

func nearbyNames(m map[string]any) []string {
	var out []string
	list, _ := m["nearby"].([]any)
	for _, e := range list {
		if p, ok := e.(map[string]any); ok {
			out = append(out, fmt.Sprint(p["Name"]))
		}
	}
	return out
}

const nsWait = 45 * time.Second // generous: CI is a loaded 2-core machine

// Nodes in two namespaces on one bridge find each other by mDNS alone
// (no rendezvous directory, no --connect), connect because they share
// "chat" and deliver messages both ways. A node in a namespace on another
// bridge is not found. A node that closes says goodbye and leaves the list
// at once; one that is killed leaves it when its records' TTL runs out.
func TestNetnsLANDiscovery(t *testing.T) {
	n := newTestNet(t)
	nsA := n.host("a", "br0", "10.214.0.1/24")
	nsB := n.host("b", "br0", "10.214.0.2/24")
	nsC := n.host("c", "br1", "10.214.0.3/24") // same subnet, other segment
	start := time.Now()
	a := startHelper(t, nsA, "alpha")
	b := startHelper(t, nsB, "bravo")
	c := startHelper(t, nsC, "charlie")
	for _, h := range []*helper{a, b, c} {
		h.wait("ready", nsWait, event("ready"))
	}
	a.wait("edge to bravo", nsWait, func(m map[string]any) bool { return m["event"] == "edge_up" && m["peer"] == "bravo" })
	b.wait("edge to alpha", nsWait, func(m map[string]any) bool { return m["event"] == "edge_up" && m["peer"] == "alpha" })
	t.Logf("alpha and bravo connected %v after start", time.Since(start).Round(10*time.Millisecond))

	a.send("pub hello-from-alpha")
	b.wait("alpha's message", nsWait, func(m map[string]any) bool { return m["event"] == "message" && m["data"] == "hello-from-alpha" })
	b.send("pub hello-from-bravo")
	a.wait("bravo's message", nsWait, func(m map[string]any) bool { return m["event"] == "message" && m["data"] == "hello-from-bravo" })

	// bravo may have found alpha first and dialed: alpha's own list gets
	// bravo from bravo's next answer. (The list is polled: a nearby event
	// may precede the helper's Watch.)
	for t0 := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		names := nearbyNames(a.ask("nearby", nsWait))
		if len(names) == 1 && names[0] == "bravo" {
			break
		}
		if len(names) > 1 || time.Since(t0) > nsWait {
			t.Logf("alpha's stats: %v; bravo's: %v", a.ask("stats", nsWait), b.ask("stats", nsWait))
			t.Fatalf("alpha lists %v, want only bravo", names)
		}
	}
	if names := nearbyNames(c.ask("nearby", nsWait)); len(names) != 0 {
		t.Fatalf("charlie, on another bridge, lists %v", names)
	}
	if st := a.ask("stats", nsWait); st["packets"].(float64) == 0 {
		t.Fatalf("alpha received no mDNS packet: %v", st)
	}

	// A graceful close sends a goodbye: bravo leaves alpha's list long
	// before its 60 s TTL.
	b.send("quit")
	<-b.done
	t0 := time.Now()
	for names := nearbyNames(a.ask("nearby", nsWait)); len(names) != 0; names = nearbyNames(a.ask("nearby", nsWait)) {
		if time.Since(t0) > 20*time.Second {
			t.Fatalf("after bravo's goodbye alpha still lists %v", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("bravo left alpha's list %v after quitting", time.Since(t0).Round(10*time.Millisecond))

	// A node killed without a goodbye leaves when its TTL (3 s here) ends.
	nsD := n.host("d", "br0", "10.214.0.4/24")
	d := startHelper(t, nsD, "delta", "HELPER_TTL=3s")
	d.wait("ready", nsWait, event("ready"))
	a.wait("delta found", nsWait, func(m map[string]any) bool { return m["event"] == "nearby" && m["name"] == "delta" })
	_ = d.cmd.Process.Kill()
	<-d.done
	t0 = time.Now()
	a.wait("delta lost", nsWait, func(m map[string]any) bool { return m["event"] == "nearby_lost" && m["name"] == "delta" })
	t.Logf("killed delta left alpha's list %v after the kill (TTL 3 s)", time.Since(t0).Round(10*time.Millisecond))
}

// 1,000 fake announcements, all sharing the victim's topic and pointing at
// listeners of the attacker: the victim's list stays within its bound, it
// dials at most DialsPerSecond (2) per second after a burst of 4, and it
// never dials an address outside the arrival interface's subnet.
func TestNetnsAnnouncementFlood(t *testing.T) {
	n := newTestNet(t)
	nsV := n.host("v", "br0", "10.214.0.1/24")
	nsF := n.host("f", "br0", "10.214.0.66/24")
	v := startHelper(t, nsV, "victim")
	v.wait("ready", nsWait, event("ready"))
	f := startHelper(t, nsF, "flooder", "HELPER_MODE=flood", "HELPER_FAKES=1000", "HELPER_WATCH=8s")
	res := f.wait("flood result", 2*nsWait, event("flood_done"))
	st := v.ask("stats", nsWait)
	t.Logf("flooder: %v", res)
	t.Logf("victim: %v", st)

	perSecond, _ := res["accepts_per_second"].([]any)
	total := 0
	for i, c := range perSecond {
		k := int(c.(float64))
		total += k
		// In any one second: the burst of 4 plus 2 refilled, plus one for a
		// second boundary falling between two dials.
		if k > 4+2+1 {
			t.Errorf("second %d: the victim dialed %d fake addresses", i, k)
		}
	}
	secs := len(perSecond)
	if limit := 4 + 2*secs + 1; total > limit {
		t.Errorf("%d dials in %d s (limit %d)", total, secs, limit)
	}
	if total == 0 {
		t.Error("the victim dialed none of the fakes: the test did not exercise the dial limit")
	}
	if listed := int(st["listed"].(float64)); listed > 64 {
		t.Errorf("victim lists %d nodes, more than its bound of 64", listed)
	}
	if rej := st["rejected"].(float64); rej < 1 {
		t.Errorf("the announcements outside the subnet were not rejected: %v", st)
	}
	for _, p := range v.ask("nearby", nsWait)["nearby"].([]any) {
		if addr := fmt.Sprint(p.(map[string]any)["Address"]); !strings.HasPrefix(addr, "10.214.0.") {
			t.Errorf("victim lists a node at %s, outside the subnet", addr)
		}
	}
	if heap := st["heap_mib"].(float64); heap > 64 {
		t.Errorf("victim heap %v MiB after the flood", heap)
	}
}

// TestNetnsHelper is not a test: it is the node (or flooder) the tests above
// run inside a namespace.
func TestNetnsHelper(t *testing.T) {
	if os.Getenv("CHASKI_NETNS_HELPER") != "1" {
		t.Skip("helper process for the network-namespace tests")
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	emit := func(v map[string]any) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(v)
	}
	if os.Getenv("HELPER_MODE") == "flood" {
		runFlooder(t, emit)
		return
	}
	ttl, _ := time.ParseDuration(os.Getenv("HELPER_TTL"))
	node, err := chaski.Start(chaski.Config{
		Name: os.Getenv("HELPER_NAME"), Listen: "0.0.0.0:0", Subscriptions: []string{"chat"},
		ReconnectAttempts: -1,
		LAN:               &chaski.LANConfig{NoLocal: true, RecordTTL: ttl, Manual: true},
	})
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		t.Fatal(err)
	}
	events, stop := node.Watch(1024)
	defer stop()
	if err := node.StartLAN(); err != nil { // after Watch: no edge_up before it
		t.Fatal(err)
	}
	go func() {
		for e := range events {
			switch e := e.(type) {
			case *chaski.EdgeUpEvent:
				emit(map[string]any{"event": "edge_up", "peer": e.Edge.Name})
			case *chaski.NearbyEvent:
				name := "nearby"
				if e.Change == "lost" {
					name = "nearby_lost"
				} else if e.Change != "found" {
					continue
				}
				emit(map[string]any{"event": name, "name": e.Node.Name, "address": e.Node.Address})
			}
		}
	}()
	go func() {
		for m := range node.Messages() {
			emit(map[string]any{"event": "message", "data": string(m.Data)})
		}
	}()
	emit(map[string]any{"event": "ready", "address": node.Addr()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		tag := ""
		if len(f) > 1 {
			tag = f[len(f)-1]
		}
		switch f[0] {
		case "pub":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = node.Publish(ctx, "chat", []byte(f[1]))
			cancel()
		case "nearby":
			emit(map[string]any{"reply": tag, "nearby": node.Nearby()})
		case "stats":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s := node.NearbyStats()
			emit(map[string]any{"reply": tag, "listed": len(node.Nearby()), "packets": s.Packets, "sent": s.Sent, "foreign": s.Foreign,
				"malformed": s.Malformed, "rejected": s.Rejected, "evicted": s.Evicted,
				"edges": node.EdgeCount(), "heap_mib": float64(ms.HeapInuse) / (1 << 20)})
		case "quit":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = node.Close(ctx)
			cancel()
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = node.Close(ctx)
}

// runFlooder sends HELPER_FAKES fake announcements from port 5353 of this
// namespace (a tenth of them with an address outside the subnet, one in
// fifty cut in half), with listeners on 50 ports that the fakes point at, and
// reports how many connections each second of HELPER_WATCH brought.
func runFlooder(t *testing.T, emit func(map[string]any)) {
	fakes, _ := strconv.Atoi(os.Getenv("HELPER_FAKES"))
	watch, _ := time.ParseDuration(os.Getenv("HELPER_WATCH"))
	var ifi *net.Interface
	var self net.IP
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				ii := i
				ifi, self = &ii, ipn.IP.To4()
			}
		}
	}
	if ifi == nil {
		t.Fatal("no interface")
	}
	var mu sync.Mutex
	start := time.Now()
	accepts := make([]int, int(watch/time.Second))
	const ports = 50
	for p := range ports {
		ln, err := net.Listen("tcp4", net.JoinHostPort(self.String(), strconv.Itoa(30000+p)))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if s := int(time.Since(start) / time.Second); s < len(accepts) {
					mu.Lock()
					accepts[s]++
					mu.Unlock()
				}
				c.Close()
			}
		}()
	}
	c, err := net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetMulticastInterface(ifi); err != nil {
		t.Fatal(err)
	}
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	sent := 0
	for i := range fakes {
		id := fmt.Sprintf("%032x", 0xfa4e0000+i)
		ip, port := self, 30000+i%ports
		if i%10 == 9 {
			ip, port = net.IPv4(192, 168, 77, 5), 30000
		}
		b, err := nearby.BuildResponse(nearby.Record{ID: id, Name: fmt.Sprintf("fake-%d", i), Version: 1, Topics: []string{"chat"}}, ip, port, 120)
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 7 {
			b = b[:len(b)/2] // malformed
		}
		if _, err := pc.WriteTo(b, nil, group); err == nil {
			sent++
		}
		if i%100 == 99 {
			time.Sleep(100 * time.Millisecond) // 1,000 fakes over about a second
		}
	}
	time.Sleep(time.Until(start.Add(watch)))
	mu.Lock()
	defer mu.Unlock()
	emit(map[string]any{"event": "flood_done", "sent": sent, "accepts_per_second": accepts})
}
