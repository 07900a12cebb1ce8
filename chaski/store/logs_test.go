package store

import (
	"fmt"
	"testing"
)

// Logs keep at most keep records each, oldest dropped, in order; they are
// not keys; a bad name is refused.
func TestLogsBoundedAndSeparate(t *testing.T) {
	s := openTest(t, Options{})
	var recs []LogRecord
	for i := 0; i < 12; i++ {
		recs = append(recs, LogRecord{Log: "chat/a", Data: []byte(fmt.Sprint("a", i))})
		if i%3 == 0 {
			recs = append(recs, LogRecord{Log: "chat/b", Data: []byte(fmt.Sprint("b", i))})
		}
	}
	if err := s.AppendLogs(recs[:7], 5); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(recs[7:], 5); err != nil {
		t.Fatal(err)
	}
	a, err := s.ReadLog("chat/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s", a); got != "[a7 a8 a9 a10 a11]" {
		t.Errorf("chat/a = %s", got)
	}
	b, _ := s.ReadLog("chat/b", 2)
	if got := fmt.Sprintf("%s", b); got != "[b6 b9]" {
		t.Errorf("chat/b newest 2 = %s", got)
	}
	if none, err := s.ReadLog("nope", 0); err != nil || len(none) != 0 {
		t.Errorf("unknown log: %v %v", none, err)
	}
	if keys, _ := s.Keys(); len(keys) != 0 || s.Len() != 0 {
		t.Errorf("logs counted as keys: %v", keys)
	}
	if err := s.AppendLogs([]LogRecord{{Log: ""}}, 5); err != ErrLogName {
		t.Errorf("empty name: %v", err)
	}
}
