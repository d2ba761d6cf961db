package bridge

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestResumeDelay(t *testing.T) {
	const interval = 200 * time.Millisecond
	// Each login lands inside its own slot, whatever the jitter draws.
	for _, rnd := range []func(int64) int64{
		func(int64) int64 { return 0 },
		func(n int64) int64 { return n - 1 },
		rand.Int64N,
	} {
		for i := 0; i < 1000; i++ {
			d := resumeDelay(i, interval, rnd)
			if lo, hi := time.Duration(i)*interval, time.Duration(i+1)*interval; d < lo || d >= hi {
				t.Fatalf("login %d starts at %v, outside [%v, %v)", i, d, lo, hi)
			}
		}
	}
	// The jitter is used: a thousand draws do not all fall at the slot start.
	jittered := 0
	for i := 0; i < 1000; i++ {
		if resumeDelay(i, interval, rand.Int64N)%interval != 0 {
			jittered++
		}
	}
	if jittered == 0 {
		t.Fatal("no login was jittered")
	}
	if d := resumeDelay(500, -1, rand.Int64N); d != 0 {
		t.Fatalf("negative interval: delay %v, want none", d)
	}
}
