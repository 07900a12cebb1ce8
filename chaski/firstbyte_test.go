package chaski

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestRateFromFirstByte: an offer that waits for a person to accept it
// does not count against the transfer's rate: FirstByte is when the data
// started, and the final Rate is bytes over (Ended − FirstByte), on both
// sides. (Before, a 50 MiB loopback send that waited 10 s for "y" ended at
// "4.2M/s".)
func TestRateFromFirstByte(t *testing.T) {
	recv := startNode(t, "127.0.0.1", Config{Name: "recv", Subscriptions: []string{"f"}, PromptFiles: true, DownloadDir: t.TempDir()})
	send := startNode(t, "127.0.0.1", Config{Name: "send", Subscriptions: []string{"f"}})
	connect(t, send, recv)
	const size = 4 << 20
	data := bytes.Repeat([]byte("chaski!!"), size/8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	type result struct {
		infos []TransferInfo
		err   error
	}
	done := make(chan result, 1)
	go func() {
		infos, err := send.PushFile(ctx, "f", bytes.NewReader(data), "wait.bin", size, nil)
		done <- result{infos, err}
	}()
	var id string
	eventually(t, "the offer waits at the receiver", func() bool {
		for _, x := range recv.Transfers() {
			if x.State == TransferPending {
				id = x.ID
				return true
			}
		}
		return false
	})
	const wait = 1500 * time.Millisecond
	time.Sleep(wait) // the person thinking: the point of the test, not a wait for a condition
	if err := recv.AcceptTransfer(id, true); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.infos) != 1 {
		t.Fatalf("send: %v %+v", r.err, r.infos)
	}
	check := func(side string, x TransferInfo) {
		t.Helper()
		if x.FirstByte.IsZero() || x.FirstByte.Sub(x.Started) < wait {
			t.Fatalf("%s: first byte %v after the offer, want ≥ %v", side, x.FirstByte.Sub(x.Started), wait)
		}
		want := float64(x.Done-x.Resumed) / x.Ended.Sub(x.FirstByte).Seconds()
		if x.Rate < 0.99*want || x.Rate > 1.01*want {
			t.Fatalf("%s: rate %.0f B/s, want %.0f (from the first byte)", side, x.Rate, want)
		}
		fromOffer := float64(x.Done) / x.Ended.Sub(x.Started).Seconds()
		if x.Rate <= fromOffer {
			t.Fatalf("%s: rate %.0f is no better than counted from the offer (%.0f)", side, x.Rate, fromOffer)
		}
	}
	check("sender", r.infos[0])
	eventually(t, "the receiver's transfer ends", func() bool {
		for _, x := range recv.Transfers() {
			if x.ID == id && x.State == TransferDone {
				check("receiver", x)
				return true
			}
		}
		return false
	})
}
