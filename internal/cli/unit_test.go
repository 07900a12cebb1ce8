package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"strings"
	"testing"
	"time"
)

func flagNames(c *command) []string {
	var out []string
	c.fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	return out
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		dir  string
		ttl  time.Duration
	}{
		{[]string{"get", "k", "--data-dir", "D"}, []string{"get", "k"}, "D", time.Hour},
		{[]string{"--data-dir", "D", "get", "k"}, []string{"get", "k"}, "D", time.Hour},
		{[]string{"put", "--ttl=2s", "k", "v", "--data-dir=D"}, []string{"put", "k", "v"}, "D", 2 * time.Second},
		{[]string{"put", "k", "--", "--data-dir", "x"}, []string{"put", "k", "--data-dir", "x"}, "", time.Hour},
		{[]string{"--data-dir", "--", "get", "k"}, []string{"get", "k"}, "--", time.Hour},
		{[]string{"--json", "ls", "--raw"}, []string{"ls"}, "", time.Hour},
	} {
		c, _ := newStoreCmd()
		pos, err := c.parse(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if strings.Join(pos, "|") != strings.Join(tc.pos, "|") {
			t.Errorf("%v: positionals %q, want %q", tc.args, pos, tc.pos)
		}
		if got := c.fs.Lookup("data-dir").Value.String(); got != tc.dir {
			t.Errorf("%v: data-dir %q, want %q", tc.args, got, tc.dir)
		}
		if got := c.fs.Lookup("ttl").Value.(flag.Getter).Get().(time.Duration); got != tc.ttl {
			t.Errorf("%v: ttl %v, want %v", tc.args, got, tc.ttl)
		}
	}
	c, _ := newStoreCmd()
	_, err := c.parse([]string{"get", "k", "--nope"})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "unknown flag: --nope") {
		t.Fatalf("unknown flag: %v", err)
	}
	c, _ = newStoreCmd()
	if _, err := c.parse([]string{"get", "--ttl", "5"}); err == nil || !strings.Contains(err.Error(), `invalid value "5" for flag --ttl: want a duration`) {
		t.Fatalf("bad duration: %v", err)
	}
	c, _ = newStoreCmd()
	if _, err := c.parse([]string{"get", "-h"}); !errors.Is(err, errHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestListFlag(t *testing.T) {
	c, _ := newNodeCmd()
	if _, err := c.parse([]string{"--connect", "a:1,b:2", "--connect", " c:3 ", "--sub", "x", "--sub", "y,z"}); err != nil {
		t.Fatal(err)
	}
	if got := c.fs.Lookup("connect").Value.String(); got != "a:1,b:2,c:3" {
		t.Errorf("connect = %q", got)
	}
	if got := c.fs.Lookup("sub").Value.String(); got != "x,y,z" {
		t.Errorf("sub = %q", got)
	}
}

func TestDefaultsPerCommand(t *testing.T) {
	tui, _ := newTUICmd()
	node, _ := newNodeCmd()
	sub, _ := newSubCmd()
	if v := tui.fs.Lookup("ping-interval").DefValue; v != "1s" {
		t.Errorf("tui ping-interval default %s", v)
	}
	if v := node.fs.Lookup("ping-interval").DefValue; v != "7s" {
		t.Errorf("node ping-interval default %s", v)
	}
	if v := sub.fs.Lookup("discover-timeout").DefValue; v != "10s" {
		t.Errorf("discover-timeout default %s", v)
	}
	if v := node.fs.Lookup("on-pair").DefValue; v != "none" {
		t.Errorf("on-pair default %s", v)
	}
}

func TestJSONObjects(t *testing.T) {
	b, err := json.Marshal(event("message").add("topic", "t").withData("data", []byte("héllo")))
	if err != nil || string(b) != `{"event":"message","topic":"t","data":"héllo"}` {
		t.Fatalf("%s %v", b, err)
	}
	b, _ = json.Marshal(event("message").withData("data", []byte{0xff, 0x00}))
	if string(b) != `{"event":"message","data":"/wA=","encoding":"base64"}` {
		t.Fatalf("%s", b)
	}
}

func TestGenPayloadAndTrim(t *testing.T) {
	for _, size := range []int{0, 1, 5, 100, 4096} {
		p := genPayload(12345, size)
		if len(p) != size {
			t.Fatalf("size %d: got %d", size, len(p))
		}
	}
	if !bytes.HasPrefix(genPayload(7, 20), []byte("7 ")) {
		t.Fatal("payload does not start with its number")
	}
	for in, want := range map[string]string{"a\n": "a", "a\r\n": "a", "a": "a", "\n": "", "a\r": "a\r"} {
		if got := string(trimEOL([]byte(in))); got != want {
			t.Errorf("trimEOL(%q) = %q", in, got)
		}
	}
	src := lineSource(strings.NewReader("one\n\nthree"))
	var got []string
	for {
		b, ok, err := src()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(b))
	}
	if strings.Join(got, "|") != "one||three" {
		t.Fatalf("lines %q", got)
	}
}

func TestPingStats(t *testing.T) {
	var s pingStats
	s.sent = 4
	for _, ms := range []float64{1, 2, 3} {
		s.add(time.Duration(ms * float64(time.Millisecond)))
	}
	avg, mdev := s.avgMdev()
	if s.received != 3 || avg != 2 || math.Abs(mdev-math.Sqrt(2.0/3)) > 1e-9 || s.loss() != 25 {
		t.Fatalf("received %d avg %v mdev %v loss %v", s.received, avg, mdev, s.loss())
	}
	if msf(s.min) != 1 || msf(s.max) != 3 {
		t.Fatalf("min %v max %v", s.min, s.max)
	}
}

func TestCleanErrAndExitStatus(t *testing.T) {
	var b bytes.Buffer
	if code := exitStatus(errors.New("chaski: cannot connect to 127.0.0.1:9: connection refused"), &b); code != 1 ||
		b.String() != "chaski: cannot connect to 127.0.0.1:9: connection refused\n" {
		t.Fatalf("%d %q", code, b.String())
	}
	b.Reset()
	if code := exitStatus(usageErrorf("bad"), &b); code != 2 || b.String() != "chaski: bad\n" {
		t.Fatalf("%d %q", code, b.String())
	}
	b.Reset()
	if code := exitStatus(&exitError{code: 1}, &b); code != 1 || b.Len() != 0 {
		t.Fatalf("%d %q", code, b.String())
	}
	if code := exitStatus(errHelp, &b); code != 0 {
		t.Fatal(code)
	}
}

func TestFlagDefaultRendering(t *testing.T) {
	for in, want := range map[string]string{"1h0m0s": "1h", "10s": "10s", "2m0s": "2m", "1m30s": "1m30s", "0": "", "0s": "", "720h0m0s": "720h", "500ms": "500ms", "none": "none"} {
		if got := flagDefault(&flag.Flag{DefValue: in}); got != want {
			t.Errorf("flagDefault(%q) = %q, want %q", in, got, want)
		}
	}
}
