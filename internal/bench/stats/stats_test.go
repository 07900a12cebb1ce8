package stats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestOfNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	p := Of(d)
	want := Percentiles{P50: 50, P90: 90, P99: 99, Min: 1, Max: 100, Mean: 50.5}
	if p != want {
		t.Fatalf("Of(1..100 µs) = %+v, want %+v", p, want)
	}
	if (Of(nil) != Percentiles{}) {
		t.Fatal("Of(nil) is not zero")
	}
}

// The histogram's percentiles stay within its ≈3% precision of the exact ones.
func TestHistAgreesWithExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hist
	var d []time.Duration
	for range 20000 {
		x := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		h.Add(x)
		d = append(d, x)
	}
	got, ok := h.Percentiles()
	if !ok || h.Count() != 20000 {
		t.Fatalf("Percentiles ok=%v count=%d", ok, h.Count())
	}
	exact := Of(d)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50, exact.P50}, {"p90", got.P90, exact.P90}, {"p99", got.P99, exact.P99}, {"mean", got.Mean, exact.Mean}} {
		if math.Abs(c.got-c.want) > 0.04*c.want {
			t.Errorf("%s = %.2f µs, exact %.2f µs", c.name, c.got, c.want)
		}
	}
	if got.Min != exact.Min || got.Max != exact.Max {
		t.Errorf("min/max %v/%v, exact %v/%v", got.Min, got.Max, exact.Min, exact.Max)
	}
	var empty Hist
	if _, ok := empty.Percentiles(); ok {
		t.Error("an empty histogram reports percentiles")
	}
}

func TestRounded(t *testing.T) {
	p := Percentiles{P50: 1.26, P90: 2.24, P99: 3, Min: 0.05, Max: 9.99, Mean: 4.449}.Rounded()
	if p != (Percentiles{P50: 1.3, P90: 2.2, P99: 3, Min: 0.1, Max: 10, Mean: 4.4}) {
		t.Fatalf("Rounded = %+v", p)
	}
}

func TestRSSOnLinux(t *testing.T) {
	if RSS() <= 0 || PeakRSS() < RSS() {
		t.Skipf("no /proc/self/status here (RSS %v, peak %v)", RSS(), PeakRSS())
	}
}
