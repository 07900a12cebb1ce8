package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "512MiB": 512 << 20, "100KiB": 100 << 10, "1048576": 1 << 20, "10M": 10 << 20, " 3 B": 3} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("lots"); err == nil {
		t.Error("ParseByteSize(lots) did not fail")
	}
}

func TestCheckDefaultsAndErrors(t *testing.T) {
	o := Options{Mode: "ping", FileSize: 1}
	if err := o.Check(); err != nil || o.Count != 20000 || o.Size != 64 {
		t.Fatalf("ping defaults: %+v, %v", o, err)
	}
	for _, bad := range []Options{{Mode: "nope", FileSize: 1}, {Mode: "ping", ViaRoot: true, FileSize: 1},
		{Mode: "ping", Size: 3, FileSize: 1}, {Mode: "messages", Count: -1, FileSize: 1}, {Mode: "files"}} {
		if err := bad.Check(); !errors.Is(err, ErrUsage) {
			t.Errorf("Check(%+v) = %v, want a usage error", bad, err)
		}
	}
}

func TestFmt(t *testing.T) {
	if got := fmtCount(1234567); got != "1,234,567" {
		t.Errorf("fmtCount = %q", got)
	}
	if got := fmtCount(-1000); got != "-1,000" {
		t.Errorf("fmtCount = %q", got)
	}
	for us, want := range map[float64]string{12.34: "12.3 µs", 1234: "1.23 ms", 12345: "12.3 ms", 2e6: "2.00 s"} {
		if got := fmtUS(us); got != want {
			t.Errorf("fmtUS(%v) = %q, want %q", us, got, want)
		}
	}
}

// A whole run in one process: the result is one JSON object whose counts
// match what was asked for.
func TestRunInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, o := range []Options{{Mode: "messages", Count: 2000, ViaRoot: true}, {Mode: "ping", Count: 200}, {Mode: "files", FileSize: 1 << 20}} {
		o.InProcess, o.JSON, o.Quiet, o.Dir = true, true, true, t.TempDir()
		if o.FileSize == 0 {
			o.FileSize = 1
		}
		if err := o.Check(); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if err := Run(ctx, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}, &o); err != nil {
			t.Fatalf("%s: %v\n%s", o.Mode, err, errOut.String())
		}
		var res map[string]any
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: %q: %v", o.Mode, out.String(), err)
		}
		switch o.Mode {
		case "messages":
			if res["received"] != float64(2000) || res["topology"] != "via-root" {
				t.Errorf("messages: %v", res)
			}
		case "ping":
			if res["count"] != float64(200) || res["rtt_us"].(map[string]any)["p50"].(float64) <= 0 {
				t.Errorf("ping: %v", res)
			}
		case "files":
			if res["verified"] != true || res["bytes"] != float64(1<<20) {
				t.Errorf("files: %v", res)
			}
		}
	}
}
