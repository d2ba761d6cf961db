package bridge

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(10*time.Second, 3)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if !l.allow("alice") {
			t.Fatalf("call %d refused within the burst", i)
		}
	}
	if l.allow("alice") {
		t.Fatal("a fourth call within the burst was allowed")
	}
	if !l.allow("bob") {
		t.Fatal("another user was limited by alice's calls")
	}
	now = now.Add(10 * time.Second)
	if !l.allow("alice") {
		t.Fatal("no token after the refill period")
	}
	if l.allow("alice") {
		t.Fatal("more than one token after one refill period")
	}
	var none *limiter
	if !none.allow("x") {
		t.Fatal("a nil limiter limits")
	}
}
